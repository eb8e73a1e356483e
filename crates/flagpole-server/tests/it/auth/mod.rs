//! Authentication: login/logout/me, CSRF, rate limiting, API tokens, SDK keys, users and
//! bootstrap, through the router on both backends.

mod accounts;
mod bootstrap;
mod credentials;
mod last_seen;
mod listener;
mod sessions;
mod users;
