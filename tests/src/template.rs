//! `infra/template.yaml` read the way CloudFormation and SAM read it, as far as what the
//! processes see goes: each function's environment (`Globals.Function` merged with the
//! function's own), memory, timeout, log group and event sources, and the push service task's
//! container environment.
//!
//! The suite runs the binaries with exactly these values, not with a copy of them, so a
//! variable the template drops, misnames or points at the wrong resource fails the suite. To
//! keep it that way, everything here fails loudly: an intrinsic function it does not know, a
//! `!Ref` to a resource the suite did not provision, a parameter without a value, a parameter
//! value the template's own constraints refuse, a reserved Lambda variable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;
use serde_norway::{Mapping, Value};

/// Why the template could not be resolved: names the variable, parameter or resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "infra/template.yaml: {}", self.0)
    }
}

impl std::error::Error for TemplateError {}

type Result<T> = std::result::Result<T, TemplateError>;

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(TemplateError(msg.into()))
}

/// The repository's template.
pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

/// The parsed document, tags (`!Ref`, `!If`, ...) kept.
#[derive(Clone, Debug)]
pub struct Template {
    root: Value,
    /// The folder the template is in: `CodeUri`s are relative to it.
    dir: Option<PathBuf>,
}

impl Template {
    /// `infra/template.yaml`.
    pub fn load() -> Result<Template> {
        let path = template_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TemplateError(format!("cannot read {}: {e}", path.display())))?;
        let mut template = Template::parse(&text)?;
        template.dir = path.parent().map(PathBuf::from);
        Ok(template)
    }

    pub fn parse(text: &str) -> Result<Template> {
        let root: Value =
            serde_norway::from_str(text).map_err(|e| TemplateError(format!("not YAML: {e}")))?;
        Ok(Template { root, dir: None })
    }

    fn section(&self, name: &str) -> Option<&Mapping> {
        self.root.get(name).and_then(Value::as_mapping)
    }

    /// A resource's declaration (`Type`, `Properties`, ...).
    pub fn resource(&self, id: &str) -> Result<&Mapping> {
        match self
            .section("Resources")
            .and_then(|r| r.get(id))
            .and_then(Value::as_mapping)
        {
            Some(r) => Ok(r),
            None => fail(format!("no resource {id}")),
        }
    }

    /// A resource's `Type`.
    pub fn resource_type(&self, id: &str) -> Result<&str> {
        match self.resource(id)?.get("Type").and_then(Value::as_str) {
            Some(t) => Ok(t),
            None => fail(format!("resource {id} has no Type")),
        }
    }

    /// The name of every environment variable the template can set, whatever the parameters:
    /// `Globals.Function` and every function's `Environment.Variables`, and every `Name` of an
    /// ECS container's `Environment` (both branches of an `!If`).
    pub fn variable_names(&self) -> std::collections::BTreeSet<String> {
        fn names_in(v: &Value, out: &mut std::collections::BTreeSet<String>) {
            match v {
                Value::Mapping(m) => {
                    if let Some(name) = m.get("Name").and_then(Value::as_str) {
                        out.insert(name.to_string());
                    }
                    for (_, item) in m {
                        names_in(item, out);
                    }
                }
                Value::Sequence(items) => items.iter().for_each(|i| names_in(i, out)),
                Value::Tagged(t) => names_in(&t.value, out),
                _ => {}
            }
        }
        let mut out = std::collections::BTreeSet::new();
        let variables = |props: Option<&Value>| -> Vec<String> {
            props
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
                .map(|m| m.keys().filter_map(scalar).collect())
                .unwrap_or_default()
        };
        out.extend(variables(
            self.section("Globals").and_then(|g| g.get("Function")),
        ));
        for id in self.resources_of_type("AWS::Serverless::Function") {
            let props = self.resource(&id).ok().and_then(|r| r.get("Properties"));
            out.extend(variables(props));
        }
        for id in self.resources_of_type("AWS::ECS::TaskDefinition") {
            let containers = self
                .resource(&id)
                .ok()
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("ContainerDefinitions"))
                .and_then(Value::as_sequence);
            for c in containers.into_iter().flatten() {
                if let Some(env) = c.get("Environment") {
                    names_in(env, &mut out);
                }
            }
        }
        out
    }

    /// The variables one function declares (`Globals.Function` and its own `Environment`):
    /// the only ones `sam local --env-vars` can set for it (others are dropped silently).
    pub fn declared_variables(&self, function: &str) -> Result<std::collections::BTreeSet<String>> {
        if self.resource_type(function)? != "AWS::Serverless::Function" {
            return fail(format!("{function} is not a function"));
        }
        let keys = |props: Option<&Value>| -> Vec<String> {
            props
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
                .map(|m| m.keys().filter_map(scalar).collect())
                .unwrap_or_default()
        };
        let mut out: std::collections::BTreeSet<String> =
            keys(self.section("Globals").and_then(|g| g.get("Function")))
                .into_iter()
                .collect();
        out.extend(keys(self.resource(function)?.get("Properties")));
        Ok(out)
    }

    /// Logical ids of the resources of one type, in the template's order.
    pub fn resources_of_type(&self, ty: &str) -> Vec<String> {
        self.section("Resources")
            .map(|r| {
                r.iter()
                    .filter(|(_, v)| v.get("Type").and_then(Value::as_str) == Some(ty))
                    .filter_map(|(k, _)| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What the stack's resources resolve to: `!Ref` values (a table's name, a queue's URL) and
/// `!GetAtt` values keyed `Resource.Attribute` (a queue's `Arn`).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    refs: BTreeMap<String, String>,
    attributes: BTreeMap<String, String>,
}

impl Resources {
    pub fn with_ref(mut self, id: &str, value: impl Into<String>) -> Self {
        self.refs.insert(id.to_string(), value.into());
        self
    }

    /// `name` is `Resource.Attribute`, as `!GetAtt` writes it.
    pub fn with_attribute(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(name.to_string(), value.into());
        self
    }

    /// The resource whose `!Ref` is `value` (a queue URL back to `ChecksQueue`).
    pub fn id_of_ref(&self, value: &str) -> Option<&str> {
        self.refs
            .iter()
            .find(|(_, v)| v.as_str() == value)
            .map(|(k, _)| k.as_str())
    }
}

/// The pseudo parameters of the emulated stack.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";
pub const STACK_NAME: &str = "changewatch-e2e";

/// One SAM event source of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSpec {
    /// `Type: SQS`: an event source mapping polling the queue.
    Sqs {
        name: String,
        queue_arn: String,
        batch_size: u32,
        report_batch_item_failures: bool,
    },
    /// `Type: HttpApi`: API Gateway's HTTP API in front of the function.
    HttpApi {
        name: String,
        payload_format_version: String,
    },
    /// `Type: ScheduleV2`: EventBridge Scheduler invoking the function; `input` is the
    /// target's `Input` (none: Scheduler's default notification).
    Schedule { name: String, input: Option<String> },
}

/// What Lambda would run for one `AWS::Serverless::Function`.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The cargo binary `sam build` packages: `Metadata.BuildProperties.Binary` (SAM's
    /// rust-cargolambda build), else the one binary of the crate at `CodeUri`.
    pub binary: String,
    pub environment: BTreeMap<String, String>,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub log_group: Option<String>,
    pub events: Vec<EventSpec>,
}

/// Environment variables Lambda sets itself and refuses in a function's configuration.
const LAMBDA_RESERVED: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

fn reserved_in_lambda(name: &str) -> bool {
    LAMBDA_RESERVED.contains(&name) || name.starts_with("AWS_LAMBDA_")
}

/// A YAML scalar as CloudFormation passes it on: a string.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `(name, argument)` of an intrinsic function, short (`!If`) or long form (`Fn::If:`).
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let short = tag.trim_start_matches('!');
            let name = match short {
                "Ref" | "Condition" => short.to_string(),
                other => format!("Fn::{other}"),
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then(|| (k.to_string(), arg))
        }
        _ => None,
    }
}

/// The template with parameter values and the stack's resources: resolves what the processes
/// are given.
#[derive(Clone, Debug)]
pub struct Deployment {
    template: Template,
    parameters: BTreeMap<String, String>,
    resources: Resources,
}

impl Deployment {
    /// `overrides` are parameter values (`sam deploy --parameter-overrides`); the others take
    /// their defaults. Every value is checked against the parameter's constraints, and every
    /// resource in `resources` must be declared by the template.
    pub fn new(
        template: Template,
        overrides: &[(&str, &str)],
        resources: Resources,
    ) -> Result<Deployment> {
        let declared = template.section("Parameters").cloned().unwrap_or_default();
        for (name, _) in overrides {
            if declared.get(*name).is_none() {
                return fail(format!("no parameter {name} to override"));
            }
        }
        let mut parameters = BTreeMap::new();
        for (name, decl) in &declared {
            let Some(name) = name.as_str() else {
                return fail("a parameter name is not a string");
            };
            let value = match overrides.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => v.to_string(),
                None => match decl.get("Default").and_then(scalar) {
                    Some(v) => v,
                    None => {
                        return fail(format!(
                            "parameter {name} has no default: the suite must give it"
                        ));
                    }
                },
            };
            check_parameter(name, decl, &value)?;
            parameters.insert(name.to_string(), value);
        }
        // A resource the suite maps but the template no longer declares is a stale mapping.
        for id in resources.refs.keys() {
            template.resource(id)?;
        }
        for key in resources.attributes.keys() {
            let Some((id, _)) = key.split_once('.') else {
                return fail(format!("attribute {key} is not Resource.Attribute"));
            };
            template.resource(id)?;
        }
        Ok(Deployment {
            template,
            parameters,
            resources,
        })
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// A parameter's value (override or default).
    pub fn parameter(&self, name: &str) -> Result<&str> {
        match self.parameters.get(name) {
            Some(v) => Ok(v),
            None => fail(format!("no parameter {name}")),
        }
    }

    /// The logical ids of the Lambda functions.
    pub fn functions(&self) -> Vec<String> {
        self.template.resources_of_type("AWS::Serverless::Function")
    }

    /// What Lambda runs for the function `id`.
    pub fn function(&self, id: &str) -> Result<FunctionSpec> {
        let res = self.template.resource(id)?;
        if self.template.resource_type(id)? != "AWS::Serverless::Function" {
            return fail(format!("{id} is not an AWS::Serverless::Function"));
        }
        let empty = Mapping::new();
        let props = res
            .get("Properties")
            .and_then(Value::as_mapping)
            .unwrap_or(&empty);
        let globals = self
            .template
            .section("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Value::as_mapping)
            .unwrap_or(&empty);
        let binary = match res
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
        {
            Some(b) => self.string(b, &format!("{id} Metadata.BuildProperties.Binary"))?,
            None => {
                let Some(uri) = props.get("CodeUri") else {
                    return fail(format!(
                        "{id} has neither BuildProperties.Binary nor CodeUri"
                    ));
                };
                let uri = self.string(uri, &format!("{id} CodeUri"))?;
                let Some(dir) = &self.template.dir else {
                    return fail(format!("{id}: CodeUri {uri} of a template read from text"));
                };
                crate_binary(&dir.join(&uri).join("Cargo.toml"))?
            }
        };
        let mut environment = BTreeMap::new();
        for source in [globals, props] {
            let Some(vars) = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
            else {
                continue;
            };
            for (name, value) in vars {
                let Some(name) = name.as_str() else {
                    return fail(format!("{id}: a variable name is not a string"));
                };
                if reserved_in_lambda(name) {
                    return fail(format!(
                        "{id} sets {name}, which Lambda reserves (the deploy would fail)"
                    ));
                }
                match self.resolve(value)? {
                    None => {
                        environment.remove(name);
                    }
                    Some(Json::String(s)) => {
                        environment.insert(name.to_string(), s);
                    }
                    Some(other) => {
                        return fail(format!("{id} {name}: not a string: {other}"));
                    }
                }
            }
        }
        let setting = |key: &str| props.get(key).or_else(|| globals.get(key));
        let number = |key: &str, default: u64| -> Result<u64> {
            match setting(key) {
                None => Ok(default),
                Some(v) => {
                    let s = self.string(v, &format!("{id} {key}"))?;
                    s.parse()
                        .map_err(|_| TemplateError(format!("{id} {key}={s:?}: not a number")))
                }
            }
        };
        let memory_mb = number("MemorySize", 128)?;
        let timeout = number("Timeout", 3)?;
        let log_group = match props.get("LoggingConfig").and_then(|l| l.get("LogGroup")) {
            Some(v) => Some(self.string(v, &format!("{id} LoggingConfig.LogGroup"))?),
            None => None,
        };
        let mut events = Vec::new();
        if let Some(declared) = props.get("Events").and_then(Value::as_mapping) {
            for (name, event) in declared {
                let name = scalar(name).unwrap_or_default();
                events.push(self.event(id, &name, event)?);
            }
        }
        Ok(FunctionSpec {
            logical_id: id.to_string(),
            binary,
            environment,
            memory_mb: u32::try_from(memory_mb)
                .map_err(|_| TemplateError(format!("{id} MemorySize out of range")))?,
            timeout: Duration::from_secs(timeout),
            log_group,
            events,
        })
    }

    fn event(&self, function: &str, name: &str, event: &Value) -> Result<EventSpec> {
        let what = format!("{function} event {name}");
        let ty = event.get("Type").and_then(Value::as_str).unwrap_or("");
        let empty = Value::Mapping(Mapping::new());
        let props = event.get("Properties").unwrap_or(&empty);
        match ty {
            "SQS" => {
                let queue_arn = match props.get("Queue") {
                    Some(q) => self.string(q, &format!("{what} Queue"))?,
                    None => return fail(format!("{what} has no Queue")),
                };
                let batch_size = match props.get("BatchSize") {
                    Some(b) => {
                        let s = self.string(b, &format!("{what} BatchSize"))?;
                        s.parse().map_err(|_| {
                            TemplateError(format!("{what} BatchSize={s:?}: not a number"))
                        })?
                    }
                    None => 10,
                };
                let report_batch_item_failures = match props.get("FunctionResponseTypes") {
                    None => false,
                    Some(v) => match self.resolve(v)? {
                        Some(Json::Array(items)) => items
                            .iter()
                            .any(|t| t.as_str() == Some("ReportBatchItemFailures")),
                        _ => return fail(format!("{what} FunctionResponseTypes: not a list")),
                    },
                };
                Ok(EventSpec::Sqs {
                    name: name.to_string(),
                    queue_arn,
                    batch_size,
                    report_batch_item_failures,
                })
            }
            "HttpApi" => {
                let payload_format_version = match props.get("PayloadFormatVersion") {
                    Some(v) => self.string(v, &format!("{what} PayloadFormatVersion"))?,
                    // SAM's default for an HttpApi event.
                    None => "2.0".to_string(),
                };
                Ok(EventSpec::HttpApi {
                    name: name.to_string(),
                    payload_format_version,
                })
            }
            "ScheduleV2" => {
                let input = match props.get("Input") {
                    Some(v) => Some(self.string(v, &format!("{what} Input"))?),
                    None => None,
                };
                Ok(EventSpec::Schedule {
                    name: name.to_string(),
                    input,
                })
            }
            other => fail(format!(
                "{what}: event type {other:?} is not emulated by the suite (add it to events.rs)"
            )),
        }
    }

    /// The environment of the first container of the ECS task definition `id`, as ECS gives
    /// it to the process.
    pub fn task_environment(&self, id: &str) -> Result<BTreeMap<String, String>> {
        if self.template.resource_type(id)? != "AWS::ECS::TaskDefinition" {
            return fail(format!("{id} is not an AWS::ECS::TaskDefinition"));
        }
        let container = self
            .template
            .resource(id)?
            .get("Properties")
            .and_then(|p| p.get("ContainerDefinitions"))
            .and_then(Value::as_sequence)
            .and_then(|c| c.first());
        let Some(container) = container else {
            return fail(format!("{id} has no ContainerDefinitions"));
        };
        let mut out = BTreeMap::new();
        let Some(entries) = container.get("Environment") else {
            return Ok(out);
        };
        let Some(Json::Array(entries)) = self.resolve(entries)? else {
            return fail(format!("{id} Environment: not a list"));
        };
        for entry in entries {
            let (Some(name), Some(value)) = (
                entry.get("Name").and_then(Json::as_str),
                entry.get("Value").and_then(Json::as_str),
            ) else {
                return fail(format!(
                    "{id} Environment entry without Name and Value: {entry}"
                ));
            };
            if out.insert(name.to_string(), value.to_string()).is_some() {
                return fail(format!("{id} sets {name} twice"));
            }
        }
        Ok(out)
    }

    fn string(&self, v: &Value, what: &str) -> Result<String> {
        match self.resolve(v)? {
            Some(Json::String(s)) => Ok(s),
            Some(other) => fail(format!("{what}: expected a string, got {other}")),
            None => fail(format!("{what}: AWS::NoValue where a value is needed")),
        }
    }

    /// The value CloudFormation would put in place of `v`; `None` for `AWS::NoValue`. Scalars
    /// become strings.
    pub fn resolve(&self, v: &Value) -> Result<Option<Json>> {
        if let Some((name, arg)) = intrinsic(v) {
            return self.call(&name, arg);
        }
        Ok(Some(match v {
            Value::Null => Json::Null,
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                Json::String(scalar(v).unwrap_or_default())
            }
            Value::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(x) = self.resolve(item)? {
                        out.push(x);
                    }
                }
                Json::Array(out)
            }
            Value::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for (k, item) in m {
                    let Some(k) = scalar(k) else {
                        return fail(format!("a mapping key is not a scalar: {k:?}"));
                    };
                    if let Some(x) = self.resolve(item)? {
                        out.insert(k, x);
                    }
                }
                Json::Object(out)
            }
            Value::Tagged(t) => return fail(format!("unknown tag {}", t.tag)),
        }))
    }

    fn call(&self, name: &str, arg: &Value) -> Result<Option<Json>> {
        let args = |n: usize| -> Result<&[Value]> {
            match arg.as_sequence() {
                Some(s) if s.len() == n => Ok(s.as_slice()),
                _ => fail(format!("{name} takes a list of {n}: {arg:?}")),
            }
        };
        match name {
            "Ref" => {
                let Some(target) = scalar(arg) else {
                    return fail(format!("Ref of a non-scalar: {arg:?}"));
                };
                self.reference(&target)
            }
            "Fn::GetAtt" => {
                let key = match arg {
                    Value::String(s) => s.clone(),
                    Value::Sequence(s) if s.len() == 2 => format!(
                        "{}.{}",
                        scalar(&s[0]).unwrap_or_default(),
                        self.string(&s[1], "GetAtt attribute")?
                    ),
                    _ => return fail(format!("GetAtt of {arg:?}")),
                };
                self.attribute(&key).map(|s| Some(Json::String(s)))
            }
            "Fn::FindInMap" => {
                let a = args(3)?;
                let map = self.string(&a[0], "FindInMap map")?;
                let first = self.string(&a[1], "FindInMap key")?;
                let second = self.string(&a[2], "FindInMap key")?;
                let found = self
                    .template
                    .section("Mappings")
                    .and_then(|m| m.get(map.as_str()))
                    .and_then(Value::as_mapping)
                    .and_then(|m| m.iter().find(|(k, _)| scalar(k).as_deref() == Some(&first)))
                    .and_then(|(_, v)| v.as_mapping())
                    .and_then(|m| {
                        m.iter()
                            .find(|(k, _)| scalar(k).as_deref() == Some(&second))
                    })
                    .map(|(_, v)| v);
                match found {
                    Some(v) => self.resolve(v),
                    None => fail(format!(
                        "FindInMap [{map}, {first}, {second}]: no such entry"
                    )),
                }
            }
            "Fn::If" => {
                let a = args(3)?;
                let Some(cond) = scalar(&a[0]) else {
                    return fail("If: the condition is not a name");
                };
                if self.condition(&cond)? {
                    self.resolve(&a[1])
                } else {
                    self.resolve(&a[2])
                }
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.clone(), BTreeMap::new()),
                    Value::Sequence(s) if s.len() == 2 => {
                        let Some(text) = s[0].as_str() else {
                            return fail("Sub: the text is not a string");
                        };
                        let mut vars = BTreeMap::new();
                        for (k, v) in s[1].as_mapping().into_iter().flatten() {
                            let k = scalar(k).unwrap_or_default();
                            let value = self.string(v, &format!("Sub variable {k}"))?;
                            vars.insert(k, value);
                        }
                        (text.to_string(), vars)
                    }
                    _ => return fail(format!("Sub of {arg:?}")),
                };
                self.substitute(&text, &vars).map(|s| Some(Json::String(s)))
            }
            "Fn::Join" => {
                let a = args(2)?;
                let sep = self.string(&a[0], "Join separator")?;
                let Some(Json::Array(items)) = self.resolve(&a[1])? else {
                    return fail("Join of a non-list");
                };
                let parts: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
                if parts.len() != items.len() {
                    return fail("Join of a list with non-strings");
                }
                Ok(Some(Json::String(parts.join(&sep))))
            }
            "Fn::Select" => {
                let a = args(2)?;
                let index: usize = self
                    .string(&a[0], "Select index")?
                    .parse()
                    .map_err(|_| TemplateError("Select: index is not a number".into()))?;
                match self.resolve(&a[1])? {
                    Some(Json::Array(items)) => match items.get(index) {
                        Some(v) => Ok(Some(v.clone())),
                        None => fail(format!("Select {index} past the list's end")),
                    },
                    Some(Json::String(s)) => match s.split(',').nth(index) {
                        Some(v) => Ok(Some(Json::String(v.to_string()))),
                        None => fail(format!("Select {index} past the list's end")),
                    },
                    _ => fail("Select from a non-list"),
                }
            }
            other => fail(format!(
                "{other} is not an intrinsic function the suite resolves (add it to template.rs)"
            )),
        }
    }

    fn pseudo(name: &str) -> Option<&'static str> {
        Some(match name {
            "AWS::Region" => REGION,
            "AWS::AccountId" => ACCOUNT_ID,
            "AWS::StackName" => STACK_NAME,
            "AWS::Partition" => "aws",
            "AWS::URLSuffix" => "amazonaws.com",
            _ => return None,
        })
    }

    fn reference(&self, target: &str) -> Result<Option<Json>> {
        if target == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = Self::pseudo(target)
            .map(str::to_string)
            .or_else(|| self.parameters.get(target).cloned())
            .or_else(|| self.resources.refs.get(target).cloned())
        {
            return Ok(Some(Json::String(v)));
        }
        // A log group's Ref is its name, which the template itself sets.
        if self.template.resource_type(target).ok() == Some("AWS::Logs::LogGroup")
            && let Some(name) = self
                .template
                .resource(target)?
                .get("Properties")
                .and_then(|p| p.get("LogGroupName"))
        {
            return self.resolve(name);
        }
        fail(format!(
            "!Ref {target}: neither a parameter nor a resource the suite provisions"
        ))
    }

    fn attribute(&self, key: &str) -> Result<String> {
        match self.resources.attributes.get(key) {
            Some(v) => Ok(v.clone()),
            None => fail(format!(
                "!GetAtt {key}: not an attribute of a resource the suite provisions"
            )),
        }
    }

    fn condition(&self, name: &str) -> Result<bool> {
        let Some(expr) = self
            .template
            .section("Conditions")
            .and_then(|c| c.get(name))
        else {
            return fail(format!("no condition {name}"));
        };
        self.truth(expr)
    }

    fn truth(&self, expr: &Value) -> Result<bool> {
        let Some((f, arg)) = intrinsic(expr) else {
            return fail(format!("not a condition: {expr:?}"));
        };
        let list = || match arg.as_sequence() {
            Some(s) => Ok(s.as_slice()),
            None => fail(format!("{f} of a non-list")),
        };
        match f.as_str() {
            "Fn::Equals" => match list()? {
                [a, b] => Ok(self.string(a, "Equals")? == self.string(b, "Equals")?),
                _ => fail("Equals takes two values"),
            },
            "Fn::Not" => match list()? {
                [c] => Ok(!self.truth(c)?),
                _ => fail("Not takes one condition"),
            },
            "Fn::And" => {
                for c in list()? {
                    if !self.truth(c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "Fn::Or" => {
                for c in list()? {
                    if self.truth(c)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            "Condition" => match scalar(arg) {
                Some(name) => self.condition(&name),
                None => fail("Condition of a non-name"),
            },
            other => fail(format!("{other} is not a condition function")),
        }
    }

    fn substitute(&self, text: &str, vars: &BTreeMap<String, String>) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return fail(format!("Sub {text:?}: unclosed ${{"));
            };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(v);
            } else if name.contains('.') {
                out.push_str(&self.attribute(name)?);
            } else {
                match self.reference(name)? {
                    Some(Json::String(s)) => out.push_str(&s),
                    _ => return fail(format!("Sub {text:?}: ${{{name}}} is not a string")),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The binary a crate builds: its one `[[bin]]`'s name, else the package's name.
fn crate_binary(manifest: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| TemplateError(format!("cannot read {}: {e}", manifest.display())))?;
    let mut section = "";
    let mut package = None;
    let mut bins = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let Some(value) = line
            .strip_prefix("name")
            .map(str::trim_start)
            .and_then(|l| l.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
        else {
            continue;
        };
        match section {
            "[package]" => package = Some(value),
            "[[bin]]" => bins.push(value),
            _ => {}
        }
    }
    match (bins.as_slice(), package) {
        ([one], _) => Ok(one.clone()),
        ([], Some(p)) => Ok(p),
        _ => fail(format!("{}: not one binary to package", manifest.display())),
    }
}

/// A parameter value as CloudFormation checks it before it creates anything.
fn check_parameter(name: &str, decl: &Value, value: &str) -> Result<()> {
    let refuse = |why: String| fail(format!("parameter {name}={value:?}: {why}"));
    let bound = |key: &str| {
        decl.get(key)
            .and_then(scalar)
            .and_then(|s| s.parse::<f64>().ok())
    };
    match decl.get("Type").and_then(Value::as_str) {
        Some("Number") => {
            let Ok(n) = value.parse::<f64>() else {
                return refuse("not a number".into());
            };
            if let Some(min) = bound("MinValue")
                && n < min
            {
                return refuse(format!("below MinValue {min}"));
            }
            if let Some(max) = bound("MaxValue")
                && n > max
            {
                return refuse(format!("above MaxValue {max}"));
            }
        }
        Some("String") => {
            let len = value.chars().count() as f64;
            if let Some(min) = bound("MinLength")
                && len < min
            {
                return refuse(format!("shorter than MinLength {min}"));
            }
            if let Some(max) = bound("MaxLength")
                && len > max
            {
                return refuse(format!("longer than MaxLength {max}"));
            }
        }
        _ => {}
    }
    if let Some(allowed) = decl.get("AllowedValues").and_then(Value::as_sequence)
        && !allowed.iter().any(|a| scalar(a).as_deref() == Some(value))
    {
        return refuse("not one of its AllowedValues".into());
    }
    if let Some(pattern) = decl.get("AllowedPattern").and_then(Value::as_str) {
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| TemplateError(format!("parameter {name}: AllowedPattern: {e}")))?;
        if !re.is_match(value) {
            return refuse(format!("does not match its AllowedPattern {pattern}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

    use super::*;

    const DOC: &str = r#"
Parameters:
  Size:
    Type: Number
    Default: 60
    AllowedValues: [30, 60]
  Token:
    Type: String
    Default: ""
  Host:
    Type: String
    Default: ""
    AllowedPattern: "^$|^[a-z.]+$"
Mappings:
  BySize:
    "30":
      Half: 15
    "60":
      Half: 30
Conditions:
  HasToken: !Not [!Equals [!Ref Token, ""]]
  HasHost: !Not [!Equals [!Ref Host, ""]]
  Both: !And [!Condition HasToken, !Condition HasHost]
Globals:
  Function:
    Timeout: 9
    Environment:
      Variables:
        QUEUE: !Ref Queue
        HALF: !FindInMap [BySize, !Ref Size, Half]
        TOKEN: !If [HasToken, !Ref Token, !Ref AWS::NoValue]
        URL: !Sub
          - "${Scheme}://${Name}/${AWS::Region}/${!Literal}"
          - Scheme: !If [Both, https, http]
            Name: !If [HasHost, !Ref Host, !GetAtt Balancer.DNSName]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Balancer:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/x/${AWS::StackName}/fn"
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: my-bin
    Properties:
      MemorySize: 256
      LoggingConfig:
        LogGroup: !Ref Logs
      Environment:
        Variables:
          OWN: own
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        Tick:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 minute)
"#;

    fn deployment(overrides: &[(&str, &str)]) -> Result<Deployment> {
        Deployment::new(
            Template::parse(DOC).unwrap(),
            overrides,
            Resources::default()
                .with_ref("Queue", "http://q/jobs")
                .with_attribute("Queue.Arn", "arn:aws:sqs:us-east-1:1:jobs")
                .with_attribute("Balancer.DNSName", "lb.example"),
        )
    }

    #[test]
    fn resolves_globals_and_the_functions_own_settings() {
        let f = deployment(&[]).unwrap().function("Fn").unwrap();
        assert_eq!(f.binary, "my-bin");
        assert_eq!(f.memory_mb, 256);
        assert_eq!(f.timeout, Duration::from_secs(9));
        assert_eq!(f.log_group.as_deref(), Some("/x/changewatch-e2e/fn"));
        let env: Vec<(&str, &str)> = f
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("HALF", "30"),
                ("OWN", "own"),
                ("QUEUE", "http://q/jobs"),
                ("URL", "http://lb.example/us-east-1/${Literal}"),
            ]
        );
        assert_eq!(
            f.events,
            [
                EventSpec::Sqs {
                    name: "Jobs".into(),
                    queue_arn: "arn:aws:sqs:us-east-1:1:jobs".into(),
                    batch_size: 5,
                    report_batch_item_failures: true,
                },
                EventSpec::Schedule {
                    name: "Tick".into(),
                    input: None,
                },
            ]
        );
    }

    #[test]
    fn conditions_follow_the_parameters() {
        let d = deployment(&[("Token", "t"), ("Host", "h.example"), ("Size", "30")]).unwrap();
        let env = d.function("Fn").unwrap().environment;
        assert_eq!(env["TOKEN"], "t");
        assert_eq!(env["HALF"], "15");
        assert_eq!(env["URL"], "https://h.example/us-east-1/${Literal}");
    }

    #[test]
    fn refuses_what_cloudformation_would_refuse() {
        let e = deployment(&[("Size", "45")]).unwrap_err();
        assert!(e.0.contains("AllowedValues"), "{e}");
        let e = deployment(&[("Host", "UPPER")]).unwrap_err();
        assert!(e.0.contains("AllowedPattern"), "{e}");
        let e = deployment(&[("Nope", "1")]).unwrap_err();
        assert!(e.0.contains("no parameter Nope"), "{e}");
    }

    #[test]
    fn an_unprovisioned_resource_fails_loudly() {
        let d = Deployment::new(Template::parse(DOC).unwrap(), &[], Resources::default()).unwrap();
        let e = d.function("Fn").unwrap_err();
        assert!(e.0.contains("!Ref Queue"), "{e}");
    }

    #[test]
    fn a_functions_binary_is_its_crates_one_binary() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = crate_binary(&root.join("functions/api/Cargo.toml")).unwrap();
        assert_eq!(bin, "changewatch-fn-api");
        assert!(crate_binary(&root.join("crates/no-such-crate/Cargo.toml")).is_err());
    }

    #[test]
    fn an_unknown_intrinsic_fails_loudly() {
        let doc = DOC.replace("OWN: own", "OWN: !Base64 x");
        let d = Deployment::new(
            Template::parse(&doc).unwrap(),
            &[],
            Resources::default()
                .with_ref("Queue", "q")
                .with_attribute("Queue.Arn", "a")
                .with_attribute("Balancer.DNSName", "b"),
        )
        .unwrap();
        let e = d.function("Fn").unwrap_err();
        assert!(e.0.contains("Fn::Base64"), "{e}");
    }
}
