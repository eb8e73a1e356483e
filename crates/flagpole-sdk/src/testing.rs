//! In-memory WebSocket pairs for the unit tests of the session and connection loop.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use flagpole_core::wire::{ClientMessage, ServerMessage};
use futures_util::{Sink, Stream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A connected pair: the client's stream and the server's end.
pub(crate) fn pair() -> (FakeWs, Peer) {
    let (to_client, rx) = mpsc::unbounded_channel();
    let (tx, from_client) = mpsc::unbounded_channel();
    (
        FakeWs { rx, tx },
        Peer {
            tx: to_client,
            rx: from_client,
        },
    )
}

/// The client's end of an in-memory WebSocket.
pub(crate) struct FakeWs {
    rx: mpsc::UnboundedReceiver<Result<Message, WsError>>,
    tx: mpsc::UnboundedSender<Message>,
}

impl Stream for FakeWs {
    type Item = Result<Message, WsError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Sink<Message> for FakeWs {
    type Error = WsError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        self.tx.send(item).map_err(|_| WsError::ConnectionClosed)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// The server's end.
pub(crate) struct Peer {
    pub(crate) tx: mpsc::UnboundedSender<Result<Message, WsError>>,
    pub(crate) rx: mpsc::UnboundedReceiver<Message>,
}

impl Peer {
    pub(crate) fn send(&self, message: &ServerMessage) {
        let text = serde_json::to_string(message).unwrap();
        self.tx.send(Ok(Message::text(text))).unwrap();
    }

    pub(crate) async fn frame(&mut self) -> Message {
        self.rx.recv().await.expect("client hung up")
    }

    pub(crate) async fn recv(&mut self) -> ClientMessage {
        match self.frame().await {
            Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}
