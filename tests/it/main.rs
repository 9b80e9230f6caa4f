//! The one integration-test binary: real HTTP over loopback, a real redis-server, the server
//! in-process on 127.0.0.1:0. One module per area; shared fixtures in `support`.

mod support;

mod client_auth;
mod flows;
mod logout;
mod logs;
mod resilience;
mod store;
mod store_queue;
mod tls;
