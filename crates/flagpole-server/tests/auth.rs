//! Authentication: login/logout/me, CSRF, rate limiting, API tokens, SDK keys, users and
//! bootstrap, through the router on both backends.

#[path = "auth/support.rs"]
mod support;

#[path = "auth/bootstrap.rs"]
mod bootstrap;
#[path = "auth/credentials.rs"]
mod credentials;
#[path = "auth/listener.rs"]
mod listener;
#[path = "auth/sessions.rs"]
mod sessions;
#[path = "auth/users.rs"]
mod users;
