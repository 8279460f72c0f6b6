//! Callers and roles. API keys map to principals; each RPC checks the role of
//! its caller against one table ([`allowed`]).
//!
//! * `business:<source_id>`: may ingest, and only events of its own source;
//! * `orchestrator`: may ask for context (chat, feed ranking, proactive)
//!   and embeddings;
//! * `privacy`: may manage consent, erase, export and read access logs.
//!
//! Keys are kept only as sha256 digests and compared in constant time against
//! every configured key (no early exit), so neither timing nor `Debug` output
//! reveals them. With no keys configured the server runs in local development
//! mode, where every caller has every role; `config` refuses that mode on a
//! non-loopback address.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Shortest accepted key: short keys can be guessed.
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A business that may only ingest its own events.
    Business {
        source_id: String,
    },
    Orchestrator,
    Privacy,
    /// No keys configured (loopback only): every role.
    LocalDev,
}

/// The authenticated caller, attached to each request by [`ApiKeys::interceptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
}

impl Principal {
    /// The name recorded in access logs.
    pub fn name(&self) -> String {
        match &self.role {
            Role::Business { source_id } => format!("business:{source_id}"),
            Role::Orchestrator => "orchestrator".into(),
            Role::Privacy => "privacy".into(),
            Role::LocalDev => "local-dev".into(),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let role = match text.trim() {
            "orchestrator" => Role::Orchestrator,
            "privacy" => Role::Privacy,
            other => match other.strip_prefix("business:") {
                Some(source) if !source.is_empty() && source.bytes().all(|b| b.is_ascii_graphic()) => {
                    Role::Business { source_id: source.to_string() }
                }
                _ => {
                    return Err(format!(
                        "unknown principal {other:?} (expected business:<source_id>, orchestrator or privacy)"
                    ))
                }
            },
        };
        Ok(Self { role })
    }
}

/// The RPCs that check roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Ingest,
    IngestStream,
    GetContext,
    Embed,
    RankItems,
    GetProactiveContext,
    SetConsent,
    ListConsents,
    EraseUser,
    GetErasureStatus,
    ExplainAccess,
    ExportUser,
}

impl Rpc {
    pub const ALL: [Rpc; 12] = [
        Rpc::Ingest,
        Rpc::IngestStream,
        Rpc::GetContext,
        Rpc::Embed,
        Rpc::RankItems,
        Rpc::GetProactiveContext,
        Rpc::SetConsent,
        Rpc::ListConsents,
        Rpc::EraseUser,
        Rpc::GetErasureStatus,
        Rpc::ExplainAccess,
        Rpc::ExportUser,
    ];
}

/// The role table.
pub fn allowed(role: &Role, rpc: Rpc) -> bool {
    match role {
        Role::LocalDev => true,
        Role::Business { .. } => matches!(rpc, Rpc::Ingest | Rpc::IngestStream),
        Role::Orchestrator => matches!(rpc, Rpc::GetContext | Rpc::Embed | Rpc::RankItems | Rpc::GetProactiveContext),
        Role::Privacy => {
            matches!(
                rpc,
                Rpc::SetConsent
                    | Rpc::ListConsents
                    | Rpc::EraseUser
                    | Rpc::GetErasureStatus
                    | Rpc::ExplainAccess
                    | Rpc::ExportUser
            )
        }
    }
}

/// The caller of `request`, if its role may call `rpc`.
pub fn authorize<T>(request: &Request<T>, rpc: Rpc) -> Result<Principal, Status> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))?;
    if !allowed(&principal.role, rpc) {
        return Err(Status::permission_denied(format!("{} may not call {rpc:?}", principal.name())));
    }
    Ok(principal)
}

/// Configured keys, as digests.
#[derive(Clone, Default)]
pub struct ApiKeys {
    entries: Vec<([u8; 32], Principal)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.entries.iter().map(|(_, p)| p.name()).collect();
        f.debug_struct("ApiKeys").field("principals", &names).field("keys", &"<redacted>").finish()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds `principal=key` or `principal key` pairs: one per line (a key
    /// file; `#` starts a comment) or comma-separated (an environment value).
    pub fn add_from_text(&mut self, text: &str) -> Result<(), String> {
        for (n, item) in text.split([',', '\n']).enumerate() {
            let item = item.trim();
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            let (principal, key) = item
                .split_once('=')
                .or_else(|| item.split_once(char::is_whitespace))
                .ok_or_else(|| format!("entry {}: expected `principal=key`", n + 1))?;
            let principal = Principal::parse(principal).map_err(|e| format!("entry {}: {e}", n + 1))?;
            let key = key.trim();
            if key.len() < MIN_KEY_LEN {
                return Err(format!(
                    "entry {} ({}): keys must be at least {MIN_KEY_LEN} characters",
                    n + 1,
                    principal.name()
                ));
            }
            let hash = digest(key);
            if self.entries.iter().any(|(h, _)| *h == hash) {
                return Err(format!("entry {} ({}): the same key is configured twice", n + 1, principal.name()));
            }
            self.entries.push((hash, principal));
        }
        Ok(())
    }

    /// The principal of `presented`, comparing against every key.
    pub fn resolve(&self, presented: &str) -> Option<Principal> {
        let hash = digest(presented);
        let mut found = None;
        for (candidate, principal) in &self.entries {
            if bool::from(candidate.ct_eq(&hash)) {
                found = Some(principal.clone());
            }
        }
        found
    }

    /// A tonic interceptor that attaches the caller's [`Principal`], or
    /// refuses with UNAUTHENTICATED. Keys come in `authorization: Bearer <key>`
    /// or `x-api-key: <key>`.
    pub fn interceptor(self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        move |mut request: Request<()>| {
            let principal = if self.is_empty() {
                Principal { role: Role::LocalDev }
            } else {
                let metadata = request.metadata();
                let presented = metadata
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .or_else(|| metadata.get("x-api-key").and_then(|v| v.to_str().ok()))
                    .ok_or_else(|| Status::unauthenticated("missing API key (authorization: Bearer <key>)"))?;
                self.resolve(presented.trim()).ok_or_else(|| Status::unauthenticated("unknown API key"))?
            };
            request.extensions_mut().insert(principal);
            Ok(request)
        }
    }
}

/// Client side: adds `authorization: Bearer <key>` to every call (nothing
/// when there is no key, for a server in local development mode).
#[derive(Clone, Default)]
pub struct BearerKey(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "BearerKey(<redacted>)" } else { "BearerKey(None)" })
    }
}

impl BearerKey {
    pub fn new(key: Option<&str>) -> Result<Self, String> {
        key.map(|k| format!("Bearer {k}").parse().map_err(|_| "the API key must be visible ASCII".to_string()))
            .transpose()
            .map(Self)
    }
}

impl tonic::service::Interceptor for BearerKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_resolve_and_stay_redacted() {
        let mut keys = ApiKeys::default();
        keys.add_from_text(
            "business:acme=acme-secret-key-0001, orchestrator=orch-secret-key-0001\n# c\nprivacy priv-secret-key-00001",
        )
        .unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys.resolve("acme-secret-key-0001").unwrap().role, Role::Business { source_id: "acme".into() });
        assert_eq!(keys.resolve("priv-secret-key-00001").unwrap().role, Role::Privacy);
        assert!(keys.resolve("acme-secret-key-0002").is_none());
        let debug = format!("{keys:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(keys.clone().add_from_text("orchestrator=short").is_err());
        assert!(keys.clone().add_from_text("admin=long-enough-key-123").is_err());
        assert!(keys.clone().add_from_text("privacy=acme-secret-key-0001").is_err(), "duplicate key");
    }

    #[test]
    fn role_table() {
        let business = Role::Business { source_id: "s".into() };
        for rpc in Rpc::ALL {
            assert!(allowed(&Role::LocalDev, rpc));
            assert_eq!(allowed(&business, rpc), matches!(rpc, Rpc::Ingest | Rpc::IngestStream), "{rpc:?}");
            let orchestrator = matches!(rpc, Rpc::GetContext | Rpc::Embed | Rpc::RankItems | Rpc::GetProactiveContext);
            assert_eq!(allowed(&Role::Orchestrator, rpc), orchestrator, "{rpc:?}");
            let privacy_rpc = matches!(
                rpc,
                Rpc::SetConsent
                    | Rpc::ListConsents
                    | Rpc::EraseUser
                    | Rpc::GetErasureStatus
                    | Rpc::ExplainAccess
                    | Rpc::ExportUser
            );
            assert_eq!(allowed(&Role::Privacy, rpc), privacy_rpc, "{rpc:?}");
        }
    }
}
