//! A business service behind bubble's router: a shop's order status.
//!
//! The bubble server is configured to route the app's business command
//! [`ORDER_STATUS`] (0x8001) here:
//!
//! ```toml
//! [[router]]
//! app = "demo"
//! commands = "0x8001"
//! address = "http://127.0.0.1:50051"
//! idempotent = true   # a status query may be asked twice
//! ```
//!
//! A device sends the order id as the body ("A-1001"); the service answers
//! with JSON, `{"order":"A-1001","status":"shipped"}`, or refuses with a gRPC
//! status the device receives as bubble's matching error code: an order
//! that is not the user's is NOT_FOUND, an empty body INVALID_ARGUMENT.
//!
//! When an order's status changes ([`Orders::set_status`]), the service asks
//! bubble to push a system notice to the order's owner through the admin
//! API ([`Notifier`]): `POST /v1/admin/apps/{app}/push` with the admin secret.
//!
//! - [`Orders`]: the in-memory order table (a real shop reads its database).
//! - [`OrderStatusService`]: the gRPC `BusinessService`.
//! - [`serve`]: serves it on a listener until a shutdown signal.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tonic::{Request, Response, Status};

/// Generated from bubble's `bubble-proto/proto/business.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("bubble.business.v1");
}

use pb::business_service_server::{BusinessService, BusinessServiceServer};

/// The business command "order status": body the order id, answer JSON.
pub const ORDER_STATUS: u16 = 0x8001;

/// One order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Its id, e.g. `A-1001`.
    pub id: String,
    /// The bubble app its owner uses.
    pub app: String,
    /// Its owner: the only user who may ask about it.
    pub user: String,
    /// Where it is: `processing`, `shipped`, `delivered`...
    pub status: String,
}

impl Order {
    /// An order `id` of `user` in `app`, with `status`.
    pub fn new(id: &str, app: &str, user: &str, status: &str) -> Order {
        Order {
            id: id.to_owned(),
            app: app.to_owned(),
            user: user.to_owned(),
            status: status.to_owned(),
        }
    }
}

/// What an order-status answer says (the body the device receives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StatusAnswer {
    /// The order id.
    pub order: String,
    /// Its status.
    pub status: String,
}

/// Why a status change did not fully happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// There is no such order.
    #[error("no order {0:?}; orders are named like A-1001")]
    NoOrder(String),
    /// The status changed, but the owner was not told.
    #[error("order {order} is now {status}, but the notice to {user} was not sent: {reason}")]
    NotNotified {
        /// The order.
        order: String,
        /// Its new status.
        status: String,
        /// Its owner.
        user: String,
        /// What went wrong with the admin API.
        reason: String,
    },
}

/// Tells users about their orders through bubble's admin API (a system
/// notice: stored in the user's inbox and pushed to every device).
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    /// The bubble server's HTTP base URL, e.g. `http://127.0.0.1:7780`.
    base: String,
    /// The admin API's bearer secret.
    admin_secret: String,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("base", &self.base)
            .field("admin_secret", &"<hidden>")
            .finish()
    }
}

impl Notifier {
    /// A notifier for the bubble server at `base` (its HTTP URL), using
    /// the admin secret.
    pub fn new(base: &str, admin_secret: &str) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a TLS backend is built in (reqwest's rustls-tls)");
        Notifier {
            client,
            base: base.trim_end_matches('/').to_owned(),
            admin_secret: admin_secret.to_owned(),
        }
    }

    /// Pushes `text` to `user` of `app` as a system notice.
    pub async fn notify(&self, app: &str, user: &str, text: &str) -> Result<(), String> {
        let url = format!("{}/v1/admin/apps/{app}/push", self.base);
        let answer = self
            .client
            .post(&url)
            .bearer_auth(&self.admin_secret)
            .json(&serde_json::json!({"target": "user", "id": user, "text": text}))
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default();
        Err(format!(
            "{url} answered {status}: {body} (check --bubble and --admin-secret)"
        ))
    }
}

/// The order table, shared by the service and whoever changes statuses.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    orders: Arc<Mutex<HashMap<String, Order>>>,
    /// Who hears about status changes (none: nobody is told).
    notifier: Option<Notifier>,
}

impl Orders {
    /// An empty table that tells nobody.
    pub fn new() -> Orders {
        Orders::default()
    }

    /// A few orders of alice and bob in `app`, for trying the example.
    pub fn demo(app: &str) -> Orders {
        let orders = Orders::new();
        orders.add(Order::new("A-1001", app, "alice", "shipped"));
        orders.add(Order::new("A-1002", app, "alice", "processing"));
        orders.add(Order::new("B-2001", app, "bob", "delivered"));
        orders
    }

    /// The same table, telling owners of status changes through `notifier`.
    pub fn with_notifier(mut self, notifier: Notifier) -> Orders {
        self.notifier = Some(notifier);
        self
    }

    /// Adds (or replaces) an order.
    pub fn add(&self, order: Order) {
        self.orders.lock().insert(order.id.clone(), order);
    }

    /// The order `id` if it belongs to `user` of `app`. Someone else's
    /// order is "not found" too: whether it exists is none of their business.
    pub fn lookup(&self, app: &str, user: &str, id: &str) -> Option<Order> {
        self.orders
            .lock()
            .get(id)
            .filter(|o| o.app == app && o.user == user)
            .cloned()
    }

    /// Sets an order's status, then tells its owner (a system notice
    /// through bubble's admin API) if a notifier is set.
    pub async fn set_status(&self, id: &str, status: &str) -> Result<Order, UpdateError> {
        let order = {
            let mut orders = self.orders.lock();
            let order = orders
                .get_mut(id)
                .ok_or_else(|| UpdateError::NoOrder(id.to_owned()))?;
            order.status = status.to_owned();
            order.clone()
        };
        if let Some(notifier) = &self.notifier {
            let text = format!("Your order {} is now {}.", order.id, order.status);
            notifier
                .notify(&order.app, &order.user, &text)
                .await
                .map_err(|reason| UpdateError::NotNotified {
                    order: order.id.clone(),
                    status: order.status.clone(),
                    user: order.user.clone(),
                    reason,
                })?;
        }
        Ok(order)
    }
}

/// The gRPC `BusinessService` bubble's router calls.
#[derive(Debug, Clone)]
pub struct OrderStatusService {
    orders: Orders,
}

impl OrderStatusService {
    /// Answers from `orders`.
    pub fn new(orders: Orders) -> OrderStatusService {
        OrderStatusService { orders }
    }

    /// Answers one "order status" command.
    fn order_status(&self, request: &pb::BusinessRequest) -> Result<StatusAnswer, Status> {
        let id = std::str::from_utf8(&request.body)
            .map(str::trim)
            .unwrap_or("");
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "send the order id as the body, e.g. A-1001",
            ));
        }
        let order = self
            .orders
            .lookup(&request.app, &request.user, id)
            .ok_or_else(|| Status::not_found(format!("no order {id} in your account")))?;
        Ok(StatusAnswer {
            order: order.id,
            status: order.status,
        })
    }
}

#[tonic::async_trait]
impl BusinessService for OrderStatusService {
    async fn handle(
        &self,
        request: Request<pb::BusinessRequest>,
    ) -> Result<Response<pb::BusinessReply>, Status> {
        let request = request.into_inner();
        let answer = match u16::try_from(request.command) {
            Ok(ORDER_STATUS) => self.order_status(&request)?,
            _ => {
                // The server's [[router]] entry routes more commands here
                // than this service knows: a configuration mistake.
                return Err(Status::unimplemented(format!(
                    "order-status serves command {ORDER_STATUS:#06x} (order status) only, not \
                     {:#06x}",
                    request.command
                )));
            }
        };
        let body = serde_json::to_vec(&answer).expect("an answer serializes");
        Ok(Response::new(pb::BusinessReply { body: body.into() }))
    }
}

/// Serves `orders` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    orders: Orders,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(BusinessServiceServer::new(OrderStatusService::new(orders)))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
