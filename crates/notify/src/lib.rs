//! Notifications: what a change sounds like and where it goes.
//!
//! - [`message`]: the rendered [`Message`] every transport takes, and its body format.
//! - [`render`]: title/body templates (sandboxed minijinja) over upstream's tokens, and the
//!   notification formats (text, html, htmlcolor, markdown).
//! - [`url`]: apprise-style notification URLs: parsing and validation with upstream's message.
//! - [`transport`]: delivery of one [`Message`] to one URL (webhooks, chat services, SMTP).

pub mod message;
pub mod render;
pub mod transport;
pub mod url;

pub use message::{Attachment, BodyFormat, Message};
pub use render::{ChangeContext, RenderError};
pub use transport::{Deliverer, DeliveryError, DeliveryOptions};
pub use url::{InvalidUrl, NotifyUrl};
