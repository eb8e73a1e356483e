//! A stand-in for `POST /sdk/v1/events`: hyper's HTTP/1 server on the test server's port,
//! recording each request and answering with scripted statuses (then 202, or the status
//! set with [`EventsStub::answer_all`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flagpole_core::wire::TelemetryBatch;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Scripted answers: status and `Retry-After`, then the status for every later request.
type Answers = Arc<Mutex<(VecDeque<(u16, Option<String>)>, u16)>>;

/// One request as received.
#[derive(Debug)]
pub struct Posted {
    pub path: String,
    pub authorization: Option<String>,
    pub batch: TelemetryBatch,
    pub at: tokio::time::Instant,
}

/// The test's end: what arrived, and what to answer next.
pub struct EventsStub {
    pub posted: mpsc::UnboundedReceiver<Posted>,
    answers: Answers,
}

#[derive(Clone)]
pub struct Serve {
    posted: mpsc::UnboundedSender<Posted>,
    answers: Answers,
}

impl EventsStub {
    pub fn new() -> (EventsStub, Serve) {
        let (tx, posted) = mpsc::unbounded_channel();
        let answers = Arc::new(Mutex::new((VecDeque::new(), 202)));
        (
            EventsStub {
                posted,
                answers: answers.clone(),
            },
            Serve {
                posted: tx,
                answers,
            },
        )
    }

    /// Answers the next request with `status` (and `Retry-After` when given).
    pub fn answer(&self, status: u16, retry_after: Option<&str>) {
        self.answers
            .lock()
            .unwrap()
            .0
            .push_back((status, retry_after.map(str::to_owned)));
    }

    /// Answers every request after the scripted ones with `status` (instead of 202).
    pub fn answer_all(&self, status: u16) {
        self.answers.lock().unwrap().1 = status;
    }

    /// The next request.
    pub async fn next(&mut self) -> Posted {
        tokio::time::timeout(Duration::from_secs(10), self.posted.recv())
            .await
            .expect("no POST in time")
            .expect("stub stopped")
    }
}

impl Serve {
    pub async fn serve(self, stream: TcpStream) {
        let service = service_fn(move |request: Request<Incoming>| {
            let this = self.clone();
            async move { Ok::<_, Infallible>(this.handle(request).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let batch: TelemetryBatch = serde_json::from_slice(&body).expect("a batch");
        let _ = self.posted.send(Posted {
            path,
            authorization,
            batch,
            at: tokio::time::Instant::now(),
        });
        let (status, retry_after) = {
            let mut answers = self.answers.lock().unwrap();
            let otherwise = answers.1;
            answers.0.pop_front().unwrap_or((otherwise, None))
        };
        // What the server's router answers a route it does not have.
        let body: &'static [u8] = if status == 404 {
            br#"{"error":{"code":"not_found","message":"route not found"}}"#
        } else {
            b"{}"
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body)));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(after) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
        }
        response
    }
}
