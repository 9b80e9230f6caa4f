//! The admin API's routes and their OpenAPI 3.1 description come from one place: every route
//! is added through [`Api`], which registers the handler with axum and records the operation
//! (method, path, scope, body and response schemas derived from the Rust types with schemars),
//! so the served document cannot leave a route out.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::http::AppState;

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// Which scope an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The admin scope.
    Admin,
    /// The audit scope.
    Audit,
    /// The audit-ingest scope of downstream platforms.
    Ingest,
}

/// The description of one operation.
#[derive(Clone)]
pub struct Op {
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    needs: Needs,
    body: Option<(&'static str, SchemaFn)>,
    ok: (u16, &'static str, Option<SchemaFn>),
    query: Vec<(&'static str, &'static str)>,
    errors: Vec<u16>,
    body_limit: Option<usize>,
}

/// Starts an operation description: its `operationId`, summary and tag. Defaults: admin
/// scope, `200` JSON with no schema, the usual errors.
pub fn op(id: &'static str, summary: &'static str, tag: &'static str) -> Op {
    Op {
        id,
        summary,
        tag,
        needs: Needs::Admin,
        body: None,
        ok: (200, "application/json", None),
        query: Vec::new(),
        errors: vec![400, 401, 403, 429, 503],
        body_limit: None,
    }
}

impl Op {
    /// A JSON request body of type `T`.
    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(("application/json", schema_of::<T>));
        self
    }
    /// A request body of another media type, described as a string.
    pub fn raw_body(mut self, media: &'static str) -> Self {
        self.body = Some((media, schema_of::<String>));
        self
    }
    /// The success status and its JSON body of type `T`.
    pub fn ok<T: JsonSchema>(mut self, status: u16) -> Self {
        self.ok = (status, "application/json", Some(schema_of::<T>));
        self
    }
    /// A success with no body.
    pub fn no_content(mut self) -> Self {
        self.ok = (204, "", None);
        self
    }
    /// A success of another media type.
    pub fn ok_raw(mut self, media: &'static str) -> Self {
        self.ok = (200, media, Some(schema_of::<String>));
        self
    }
    /// A query parameter.
    pub fn query(mut self, name: &'static str, description: &'static str) -> Self {
        self.query.push((name, description));
        self
    }
    /// Further error statuses this operation may answer.
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }
    /// Needs the audit scope instead of the admin scope.
    pub fn audit(mut self) -> Self {
        self.needs = Needs::Audit;
        self
    }
    /// Needs the audit-ingest scope.
    pub fn ingest(mut self) -> Self {
        self.needs = Needs::Ingest;
        self
    }
    /// A larger request body than the server-wide limit.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }
}

struct Entry {
    method: &'static str,
    path: &'static str,
    op: Op,
}

/// A router that documents what it routes.
pub struct Api {
    router: Router<AppState>,
    entries: Vec<Entry>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

fn filter(method: &'static str) -> MethodFilter {
    match method {
        "post" => MethodFilter::POST,
        "put" => MethodFilter::PUT,
        "delete" => MethodFilter::DELETE,
        "patch" => MethodFilter::PATCH,
        _ => MethodFilter::GET,
    }
}

impl Api {
    /// An empty API.
    pub fn new() -> Self {
        Self { router: Router::new(), entries: Vec::new() }
    }

    fn add<H, T>(mut self, method: &'static str, path: &'static str, handler: H, op: Op) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let mut route = on(filter(method), handler);
        if let Some(limit) = op.body_limit {
            route = route.layer(axum::extract::DefaultBodyLimit::max(limit));
        }
        self.router = self.router.route(path, route);
        self.entries.push(Entry { method, path, op });
        self
    }

    /// `GET path`.
    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, op: Op) -> Self {
        self.add("get", path, h, op)
    }
    /// `POST path`.
    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, op: Op) -> Self {
        self.add("post", path, h, op)
    }
    /// `PUT path`.
    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, op: Op) -> Self {
        self.add("put", path, h, op)
    }
    /// `DELETE path`.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, op: Op) -> Self {
        self.add("delete", path, h, op)
    }

    /// Adds another API's routes and operations.
    pub fn merge(mut self, other: Api) -> Self {
        self.router = self.router.merge(other.router);
        self.entries.extend(other.entries);
        self
    }

    /// The router and the OpenAPI document describing it.
    pub fn finish(self, admin_scope: &str, audit_scope: &str, issuer: &str) -> (Router<AppState>, Value) {
        let doc = self.document(admin_scope, audit_scope, issuer);
        (self.router, doc)
    }

    fn document(&self, admin_scope: &str, audit_scope: &str, issuer: &str) -> Value {
        let mut generator = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .into_generator();
        let problem = generator.subschema_for::<ProblemDoc>();
        let mut paths = Map::new();
        for e in &self.entries {
            let mut params: Vec<Value> = path_params(e.path)
                .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
            params.extend(e.op.query.iter().map(|(name, description)| {
                json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
            }));
            let (status, media, schema) = &e.op.ok;
            let ok = match (media.is_empty(), schema) {
                (true, _) => json!({"description": "Done"}),
                (false, Some(f)) => {
                    json!({"description": "Success", "content": {*media: {"schema": f(&mut generator)}}})
                }
                (false, None) => json!({"description": "Success", "content": {*media: {}}}),
            };
            let mut responses = Map::new();
            responses.insert(status.to_string(), ok);
            for code in &e.op.errors {
                responses.insert(
                    code.to_string(),
                    json!({
                        "description": error_text(*code),
                        "content": {"application/problem+json": {"schema": problem.clone()}}
                    }),
                );
            }
            let scope = match e.op.needs {
                Needs::Admin => admin_scope,
                Needs::Audit => audit_scope,
                Needs::Ingest => crate::scopes::AUDIT_INGEST,
            };
            let mut operation = json!({
                "operationId": e.op.id,
                "summary": e.op.summary,
                "tags": [e.op.tag],
                "parameters": params,
                "responses": responses,
                "security": [{"bearer": [scope]}],
            });
            if let (Some((media, f)), Some(o)) = (&e.op.body, operation.as_object_mut()) {
                o.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": {*media: {"schema": f(&mut generator)}}}),
                );
            }
            let item = paths.entry(e.path).or_insert_with(|| json!({}));
            if let Some(item) = item.as_object_mut() {
                item.insert(e.method.to_owned(), operation);
            }
        }
        let schemas = generator.take_definitions(true);
        json!({
            "openapi": "3.1.0",
            "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
            "info": {
                "title": "tongzheng admin API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Applications and their lifecycle, clients, natural persons (users) and legal persons, the scope catalogue, keys, sessions and the audit log. Authorize with a tongzheng access token (client_credentials) carrying the scope each operation names; errors are RFC 7807 problem documents.",
            },
            "servers": [{"url": issuer}],
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "oauth2", "flows": {"clientCredentials": {
                        "tokenUrl": format!("{issuer}/token"),
                        "scopes": {
                            admin_scope: "administer the platform",
                            audit_scope: "read the audit log",
                            crate::scopes::AUDIT_INGEST: "forward a downstream platform's audit events",
                        },
                    }}},
                },
            },
        })
    }
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn error_text(code: u16) -> &'static str {
    match code {
        400 => "Invalid input",
        401 => "No valid bearer token",
        403 => "The token lacks the scope, or the action is reserved to another role",
        404 => "Not found",
        409 => "Conflict with the current state (e.g. an illegal lifecycle transition)",
        413 => "Body too large",
        422 => "Review evidence missing",
        429 => "Rate limit exceeded; see Retry-After",
        _ => "Service unavailable; retry",
    }
}

/// An RFC 7807 problem document, as the admin API answers errors.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct ProblemDoc {
    /// A URI naming the problem type (`urn:tongzheng:problem:...`).
    #[schemars(rename = "type")]
    kind: String,
    /// Short summary of the type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for a person.
    detail: String,
}
