//! Reads herald's options from compiled descriptors into the [`Model`], checking every rule.
//!
//! The descriptors come as bytes decoded by prost-reflect: options read through
//! `prost_types` lose their extension fields, these keep them.

use std::time::Duration;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor, MethodDescriptor,
    ServiceDescriptor, Value,
};

use crate::model::{
    AppErrorEnum, AppErrorRef, BreakerPolicy, CODE_NAMES, ClientPolicy, Method, Model, RetryPolicy,
    Service,
};

/// The most attempts any call makes, whatever a contract says.
const MAX_ATTEMPTS: u32 = 5;

/// Reads the contracts of `files` (names as imported, e.g. `cache.proto`). Returns the
/// model, warnings for cargo, or every rule broken, each as one line.
/// `fallback_deadline` is the deadline of services that set no default (contracts one does
/// not own).
pub(crate) fn read(
    pool: &DescriptorPool,
    files: &[String],
    fallback_deadline: Option<Duration>,
) -> Result<(Model, Vec<String>), Vec<String>> {
    let mut reader = Reader {
        ext: Extensions::new(pool),
        errors: Vec::new(),
        warnings: Vec::new(),
        fallback_deadline,
    };
    let mut model = Model::default();
    for file in pool.files().filter(|f| files.iter().any(|n| n == f.name())) {
        for e in file
            .enums()
            .chain(file.messages().flat_map(|m| nested_enums(&m)))
        {
            if let Some(app_error) = reader.app_error(&e) {
                model.app_errors.push(app_error);
            }
        }
        for service in file.services() {
            model.services.push(reader.service(&service));
        }
    }
    if reader.errors.is_empty() {
        Ok((model, reader.warnings))
    } else {
        Err(reader.errors)
    }
}

struct Reader {
    ext: Extensions,
    errors: Vec<String>,
    warnings: Vec<String>,
    fallback_deadline: Option<Duration>,
}

/// herald's extensions, looked up once.
struct Extensions {
    default_deadline_ms: ExtensionDescriptor,
    default_client: ExtensionDescriptor,
    app_error: ExtensionDescriptor,
    deadline_ms: ExtensionDescriptor,
    no_deadline: ExtensionDescriptor,
    client: ExtensionDescriptor,
    rpc_error: ExtensionDescriptor,
    grpc_code: ExtensionDescriptor,
}

impl Extensions {
    fn new(pool: &DescriptorPool) -> Self {
        let get = |name: &str| {
            pool.get_extension_by_name(name)
                .unwrap_or_else(|| panic!("herald/options.proto defines {name}"))
        };
        Extensions {
            default_deadline_ms: get("herald.default_deadline_ms"),
            default_client: get("herald.default_client"),
            app_error: get("herald.app_error"),
            deadline_ms: get("herald.deadline_ms"),
            no_deadline: get("herald.no_deadline"),
            client: get("herald.client"),
            rpc_error: get("herald.rpc_error"),
            grpc_code: get("herald.grpc_code"),
        }
    }
}

// === impl Reader ===

impl Reader {
    fn service(&mut self, service: &ServiceDescriptor) -> Service {
        let options = service.options();
        let name = service.full_name().to_owned();
        let default_deadline = self
            .millis(
                &options,
                &self.ext.default_deadline_ms.clone(),
                &name,
                "default_deadline_ms",
            )
            .or(self.fallback_deadline);
        let default_client = options
            .has_extension(&self.ext.default_client)
            .then(|| extension_message(&options, &self.ext.default_client))
            .flatten();
        let client_defaults = match &default_client {
            Some(config) => self.client_config(config, ClientPolicy::default(), &name),
            None => ClientPolicy::default(),
        };
        let app_error = self.service_app_error(service, &options);
        let methods = service
            .methods()
            .map(|m| self.method(&m, default_deadline, &client_defaults))
            .collect();
        Service {
            full_name: name,
            methods,
            app_error,
        }
    }

    fn method(
        &mut self,
        method: &MethodDescriptor,
        default_deadline: Option<Duration>,
        client_defaults: &ClientPolicy,
    ) -> Method {
        let options = method.options();
        let name = format!("{}.{}", method.parent_service().full_name(), method.name());
        let own = self.millis(
            &options,
            &self.ext.deadline_ms.clone(),
            &name,
            "deadline_ms",
        );
        let no_deadline = matches!(
            options
                .has_extension(&self.ext.no_deadline)
                .then(|| options.get_extension(&self.ext.no_deadline).into_owned()),
            Some(Value::Bool(true))
        );
        let deadline = match (own, no_deadline) {
            (Some(_), true) => {
                self.errors.push(format!(
                    "method {name} sets both (herald.deadline_ms) and (herald.no_deadline): keep one"
                ));
                None
            }
            (Some(d), false) => Some(d),
            (None, true) => None,
            (None, false) => match default_deadline {
                Some(d) => Some(d),
                None => {
                    self.errors.push(format!(
                        "method {name} has no deadline: add `option (herald.deadline_ms) = <ms>;` to the \
                         method or `option (herald.default_deadline_ms) = <ms>;` to service {}, or \
                         `option (herald.no_deadline) = true;` if it must have none (a stream that watches)",
                        method.parent_service().full_name()
                    ));
                    None
                }
            },
        };
        let client = match extension_message(&options, &self.ext.client) {
            Some(config) if options.has_extension(&self.ext.client) => {
                self.client_config(&config, client_defaults.clone(), &name)
            }
            _ => client_defaults.clone(),
        };
        let own_retry = extension_message(&options, &self.ext.client).is_some_and(|c| {
            options.has_extension(&self.ext.client) && c.has_field_by_name("retry")
        });
        if own_retry
            && client.retry.as_ref().is_some_and(|r| r.max_attempts > 1)
            && !client.idempotent
        {
            self.warnings.push(format!(
                "method {name} has a retry policy but is not idempotent: clients will retry it only \
                 when the request provably never reached a server"
            ));
        }
        Method {
            name: method.name().to_owned(),
            client_streaming: method.is_client_streaming(),
            server_streaming: method.is_server_streaming(),
            deadline,
            client,
        }
    }

    /// A `ClientConfig` applied over `base`: scalars one by one, sub-messages whole.
    fn client_config(
        &mut self,
        config: &DynamicMessage,
        mut base: ClientPolicy,
        owner: &str,
    ) -> ClientPolicy {
        if config.has_field_by_name("timeout_ms") {
            base.timeout =
                self.positive_ms(field_i64(config, "timeout_ms"), owner, "client timeout_ms");
        }
        if config.has_field_by_name("idempotent") {
            base.idempotent = matches!(
                config.get_field_by_name("idempotent").as_deref(),
                Some(Value::Bool(true))
            );
        }
        if config.has_field_by_name("retry")
            && let Some(Value::Message(retry)) = config.get_field_by_name("retry").as_deref()
        {
            base.retry = self.retry(retry, owner);
        }
        if config.has_field_by_name("circuit_breaker")
            && let Some(Value::Message(breaker)) =
                config.get_field_by_name("circuit_breaker").as_deref()
        {
            base.circuit_breaker = self.breaker(breaker, owner);
        }
        base
    }

    fn retry(&mut self, retry: &DynamicMessage, owner: &str) -> Option<RetryPolicy> {
        let attempts = field_i64(retry, "max_attempts");
        if attempts < 1 {
            self.errors.push(format!(
                "{owner}: retry max_attempts must be at least 1 (1 means no retry), not {attempts}"
            ));
            return None;
        }
        let max_attempts = if attempts > i64::from(MAX_ATTEMPTS) {
            self.warnings.push(format!(
                "{owner}: retry max_attempts {attempts} is capped at {MAX_ATTEMPTS}"
            ));
            MAX_ATTEMPTS
        } else {
            attempts as u32
        };
        let initial = self.positive_ms(
            field_i64(retry, "initial_backoff_ms"),
            owner,
            "retry initial_backoff_ms",
        );
        let max = self.positive_ms(
            field_i64(retry, "max_backoff_ms"),
            owner,
            "retry max_backoff_ms",
        );
        let multiplier = field_f64(retry, "backoff_multiplier");
        if !(multiplier >= 1.0 && multiplier.is_finite()) {
            self.errors.push(format!(
                "{owner}: retry backoff_multiplier must be at least 1, not {multiplier}"
            ));
        }
        let mut retriable = Vec::new();
        if let Some(Value::List(codes)) = retry.get_field_by_name("retriable_codes").as_deref() {
            for code in codes {
                if let Value::String(code) = code {
                    match self.code_name(code, owner) {
                        Some("OK") => self
                            .errors
                            .push(format!("{owner}: OK is not an error and cannot be retried")),
                        Some(code) => retriable.push(code.to_owned()),
                        None => {}
                    }
                }
            }
        }
        if retriable.is_empty() && max_attempts > 1 {
            self.errors.push(format!(
                "{owner}: retry policy lists no retriable_codes (e.g. [\"UNAVAILABLE\"])"
            ));
        }
        let (initial, max) = (initial?, max?);
        if max < initial {
            self.errors.push(format!(
                "{owner}: retry max_backoff_ms is below initial_backoff_ms"
            ));
        }
        Some(RetryPolicy {
            max_attempts,
            initial_backoff: initial,
            max_backoff: max,
            multiplier,
            retriable,
        })
    }

    fn breaker(&mut self, breaker: &DynamicMessage, owner: &str) -> Option<BreakerPolicy> {
        let window = self.positive_ms(
            field_i64(breaker, "window_ms"),
            owner,
            "circuit_breaker window_ms",
        );
        let open_for = self.positive_ms(
            field_i64(breaker, "open_ms"),
            owner,
            "circuit_breaker open_ms",
        );
        let ratio = field_f64(breaker, "failure_ratio");
        if !(ratio > 0.0 && ratio <= 1.0) {
            self.errors.push(format!(
                "{owner}: circuit_breaker failure_ratio must be in (0, 1], not {ratio}"
            ));
        }
        let minimum = field_i64(breaker, "minimum_requests");
        if minimum < 1 {
            self.errors.push(format!(
                "{owner}: circuit_breaker minimum_requests must be at least 1, not {minimum}"
            ));
        }
        Some(BreakerPolicy {
            window: window?,
            failure_ratio: ratio,
            minimum_requests: u32::try_from(minimum.max(1)).unwrap_or(u32::MAX),
            open_for: open_for?,
        })
    }

    fn service_app_error(
        &mut self,
        service: &ServiceDescriptor,
        options: &DynamicMessage,
    ) -> Option<AppErrorRef> {
        if !options.has_extension(&self.ext.app_error) {
            return None;
        }
        let Value::String(name) = options.get_extension(&self.ext.app_error).into_owned() else {
            return None;
        };
        let full = name.trim_start_matches('.');
        let pool = service.parent_pool();
        let Some(e) = pool.get_enum_by_name(full) else {
            self.errors.push(format!(
                "service {}: (herald.app_error) names {name:?}, which is no enum (use the full name, e.g. \"{}.MyError\")",
                service.full_name(),
                service.package_name()
            ));
            return None;
        };
        if !self.is_rpc_error(&e) {
            self.errors.push(format!(
                "service {}: (herald.app_error) enum {full} lacks `option (herald.rpc_error) = true;`",
                service.full_name()
            ));
            return None;
        }
        if e.package_name() != service.package_name() {
            self.errors.push(format!(
                "service {}: app error enum {full} must be in the service's package {}",
                service.full_name(),
                service.package_name()
            ));
            return None;
        }
        Some(AppErrorRef {
            full_name: full.to_owned(),
            rust_path: rust_path(&e),
        })
    }

    fn app_error(&mut self, e: &EnumDescriptor) -> Option<AppErrorEnum> {
        let marked = self.is_rpc_error(e);
        let mut codes = Vec::new();
        for value in e.values() {
            let options = value.options();
            let has_code = options.has_extension(&self.ext.grpc_code);
            let owner = format!("value {} of enum {}", value.name(), e.full_name());
            match (has_code, marked) {
                (true, false) => self.errors.push(format!(
                    "{owner} has (herald.grpc_code) but the enum lacks `option (herald.rpc_error) = true;`"
                )),
                (true, true) => {
                    if let Value::String(code) = options.get_extension(&self.ext.grpc_code).into_owned() {
                        match self.code_name(&code, &owner) {
                            Some("OK") => self.errors.push(format!("{owner}: an app error cannot travel as OK")),
                            Some(code) => codes.push((value.number(), code.to_owned())),
                            None => {}
                        }
                    }
                }
                (false, true) if value.number() != 0 => self.errors.push(format!(
                    "{owner} has no gRPC code: add [(herald.grpc_code) = \"NOT_FOUND\"] (or another code name)"
                )),
                (false, _) => {}
            }
        }
        marked.then(|| AppErrorEnum {
            full_name: e.full_name().to_owned(),
            package: e.package_name().to_owned(),
            rust_path: rust_path(e),
            codes,
        })
    }

    fn is_rpc_error(&self, e: &EnumDescriptor) -> bool {
        let options = e.options();
        options.has_extension(&self.ext.rpc_error)
            && matches!(
                options.get_extension(&self.ext.rpc_error).as_ref(),
                Value::Bool(true)
            )
    }

    fn code_name<'a>(&mut self, code: &'a str, owner: &str) -> Option<&'static str> {
        let found = CODE_NAMES.iter().find(|n| **n == code).copied();
        if found.is_none() {
            self.errors.push(format!(
                "{owner}: unknown gRPC code name {code:?}; expected one of {}",
                CODE_NAMES.join(", ")
            ));
        }
        let _: &'a str = code;
        found
    }

    fn millis(
        &mut self,
        options: &DynamicMessage,
        ext: &ExtensionDescriptor,
        owner: &str,
        what: &str,
    ) -> Option<Duration> {
        if !options.has_extension(ext) {
            return None;
        }
        match options.get_extension(ext).as_ref() {
            Value::I64(ms) => self.positive_ms(*ms, owner, what),
            _ => None,
        }
    }

    fn positive_ms(&mut self, ms: i64, owner: &str, what: &str) -> Option<Duration> {
        if ms <= 0 {
            self.errors.push(format!(
                "{owner}: {what} must be a positive number of milliseconds, not {ms}"
            ));
            return None;
        }
        Some(Duration::from_millis(ms as u64))
    }
}

fn extension_message(
    options: &DynamicMessage,
    ext: &ExtensionDescriptor,
) -> Option<DynamicMessage> {
    match options.get_extension(ext).into_owned() {
        Value::Message(m) => Some(m),
        _ => None,
    }
}

fn field_i64(message: &DynamicMessage, name: &str) -> i64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn field_f64(message: &DynamicMessage, name: &str) -> f64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::F64(n)) => *n,
        _ => 0.0,
    }
}

fn nested_enums(message: &prost_reflect::MessageDescriptor) -> Vec<EnumDescriptor> {
    let mut out: Vec<EnumDescriptor> = message.child_enums().collect();
    for child in message.child_messages() {
        out.extend(nested_enums(&child));
    }
    out
}

/// The Rust path prost gives an enum, relative to its package's module: `CacheError`, or
/// `outer::Inner` for an enum nested in message `Outer`.
fn rust_path(e: &EnumDescriptor) -> String {
    let package = e.package_name();
    let relative = e
        .full_name()
        .strip_prefix(package)
        .unwrap_or(e.full_name())
        .trim_start_matches('.');
    let mut parts: Vec<&str> = relative.split('.').collect();
    let last = parts.pop().unwrap_or_default().to_upper_camel_case();
    parts
        .iter()
        .map(|p| p.to_snake_case())
        .chain(std::iter::once(last))
        .collect::<Vec<_>>()
        .join("::")
}
