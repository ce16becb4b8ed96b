//! End-to-end suite of AWS mode: the built Lambda binaries (`functions/*`) run under a Lambda
//! Runtime API of our own, with the event shapes AWS sends, the environment the SAM template
//! gives them, against moto; the push-service binary beside them, with its ECS task's
//! environment, and a real Socket.IO client connected to it. The cases are in `tests/`.
//!
//! - [`template`]: `infra/template.yaml` resolved as CloudFormation resolves it (parameters,
//!   conditions, mappings, `!Sub`, resources): each function's environment, memory, timeout
//!   and event sources, and the push service container's environment.
//! - [`runtime`]: the Lambda Runtime API emulator and [`runtime::Function`], a function's
//!   execution environments (cold starts, one invocation at a time, timeout, kill).
//! - [`events`]: HTTP API payload 2.0 events and responses, SQS event source mappings
//!   (batches received from the queue, settled as Lambda settles them), the scheduler's event.
//! - [`gateway`]: API Gateway's HTTP API on a loopback port in front of a function.
//! - [`stack`]: one deployment per test on fresh moto resources, everything above wired from
//!   the template.
//! - [`push`]: the push-service binary; [`socket`]: a socket.io-client connected to it.
//! - [`binaries`]: where the workspace's built binaries are; [`process`]: child processes'
//!   output, kept for failure messages.

pub mod binaries;
pub mod events;
pub mod gateway;
pub mod process;
pub mod push;
pub mod runtime;
pub mod socket;
pub mod stack;
pub mod template;
