//! `ActivityEvent`, shaped like a Conversions API server event, and its
//! validation. Validation is per field: the first problem found is reported
//! with the dotted path of the field (`custom_data.currency`) so a business
//! can fix its pipeline from the message alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One person's activity at one business.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityEvent {
    pub event_id: String,
    pub user_id: String,
    pub source_id: String,
    /// Display name of the business; `source_id` stands in when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_name: String,
    pub event_name: String,
    /// Unix seconds.
    pub event_time: i64,
    #[serde(default)]
    pub action_source: String,
    #[serde(default)]
    pub custom_data: CustomData,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_source_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_processing_options: Vec<String>,
}

/// The Conversions API `custom_data` object, plus free-form `properties` for
/// custom events (game sessions, trips, plans).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomData {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_category: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_items: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub search_string: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    /// Sorted map, so an event's canonical JSON (and its hash) is stable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// One line item of `custom_data.contents`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_price: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
}

/// Conversions API `action_source` values.
pub const ACTION_SOURCES: &[&str] = &[
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// Families of events that share a sentence template (and, later, a recency
/// half-life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventFamily {
    Purchase,
    Cart,
    View,
    Search,
    Signup,
    AppGame,
    Travel,
    Custom,
}

impl EventFamily {
    pub const ALL: [EventFamily; 8] =
        [Self::Purchase, Self::Cart, Self::View, Self::Search, Self::Signup, Self::AppGame, Self::Travel, Self::Custom];

    /// The family named by [`EventFamily::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Position in [`EventFamily::ALL`] (for per-family tables).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn of(event_name: &str) -> Self {
        match event_name {
            "Purchase" => Self::Purchase,
            "AddToCart" | "InitiateCheckout" | "AddPaymentInfo" | "AddToWishlist" => Self::Cart,
            "ViewContent" => Self::View,
            "Search" => Self::Search,
            "CompleteRegistration"
            | "Subscribe"
            | "StartTrial"
            | "Lead"
            | "SubmitApplication"
            | "Schedule"
            | "Contact" => Self::Signup,
            "GamePlayed" | "AppInstall" | "AppOpen" | "LevelAchieved" | "AchievementUnlocked" => Self::AppGame,
            "TripBooked" | "FlightBooked" | "HotelBooked" => Self::Travel,
            _ => Self::Custom,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Cart => "cart",
            Self::View => "view",
            Self::Search => "search",
            Self::Signup => "signup",
            Self::AppGame => "app_game",
            Self::Travel => "travel",
            Self::Custom => "custom",
        }
    }
}

/// Size limits for one event. Every field is bounded so one request cannot
/// make the engine embed or store an unbounded amount of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_id_len: usize,
    pub max_text_len: usize,
    pub max_url_len: usize,
    pub max_list_len: usize,
    pub max_properties: usize,
    /// Accepted clock skew for `event_time` in the future, seconds.
    pub max_future_skew_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_id_len: 128,
            max_text_len: 512,
            max_url_len: 2048,
            max_list_len: 64,
            max_properties: 16,
            max_future_skew_secs: 600,
        }
    }
}

/// Earliest accepted `event_time`: 2000-01-01T00:00:00Z. Anything older is
/// almost certainly milliseconds-vs-seconds confusion or a zero default.
const MIN_EVENT_TIME: i64 = 946_684_800;
/// Largest accepted monetary value or item price.
const MAX_VALUE: f64 = 1e9;
/// Largest accepted item count.
const MAX_ITEMS: u32 = 100_000;

/// A validation failure: which field and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

type Check = Result<(), FieldError>;

impl ActivityEvent {
    /// Checks every field against `limits`; `now` is unix seconds.
    pub fn validate(&self, limits: &Limits, now: i64) -> Check {
        id("event_id", &self.event_id, limits)?;
        validate_user_id("user_id", &self.user_id, limits)?;
        id("source_id", &self.source_id, limits)?;
        text("source_name", &self.source_name, limits.max_id_len)?;
        single_line("source_name", &self.source_name)?;
        event_name(&self.event_name)?;
        if self.event_time < MIN_EVENT_TIME {
            return Err(FieldError::new(
                "event_time",
                format!("expected unix seconds on or after 2000-01-01 ({MIN_EVENT_TIME}), got {}", self.event_time),
            ));
        }
        if self.event_time > now.saturating_add(limits.max_future_skew_secs) {
            return Err(FieldError::new(
                "event_time",
                format!("{} is more than {} s in the future (now {now})", self.event_time, limits.max_future_skew_secs),
            ));
        }
        if !ACTION_SOURCES.contains(&self.action_source.as_str()) {
            return Err(FieldError::new(
                "action_source",
                format!("expected one of {}, got {:?}", ACTION_SOURCES.join(", "), self.action_source),
            ));
        }
        if self.event_source_url.len() > limits.max_url_len {
            return Err(too_long("event_source_url", limits.max_url_len));
        }
        no_controls("event_source_url", &self.event_source_url)?;
        page_url("event_source_url", &self.event_source_url)?;
        list_len("data_processing_options", self.data_processing_options.len(), 8)?;
        for (i, option) in self.data_processing_options.iter().enumerate() {
            text(&format!("data_processing_options[{i}]"), option, 32)?;
        }
        self.custom_data.validate(limits)
    }

    /// The business's display name, falling back to its id.
    pub fn source_display(&self) -> &str {
        if self.source_name.trim().is_empty() {
            &self.source_id
        } else {
            &self.source_name
        }
    }

    pub fn family(&self) -> EventFamily {
        EventFamily::of(&self.event_name)
    }
}

impl CustomData {
    fn validate(&self, limits: &Limits) -> Check {
        let max = limits.max_text_len;
        text("custom_data.content_name", &self.content_name, max)?;
        text("custom_data.content_category", &self.content_category, max)?;
        text("custom_data.search_string", &self.search_string, max)?;
        text("custom_data.status", &self.status, 64)?;
        text("custom_data.content_type", &self.content_type, 64)?;
        list_len("custom_data.content_ids", self.content_ids.len(), limits.max_list_len)?;
        for (i, content_id) in self.content_ids.iter().enumerate() {
            text(&format!("custom_data.content_ids[{i}]"), content_id, limits.max_id_len)?;
        }
        list_len("custom_data.contents", self.contents.len(), limits.max_list_len)?;
        for (i, content) in self.contents.iter().enumerate() {
            let field = format!("custom_data.contents[{i}]");
            text(&format!("{field}.id"), &content.id, limits.max_id_len)?;
            text(&format!("{field}.title"), &content.title, max)?;
            if content.quantity > MAX_ITEMS {
                return Err(FieldError::new(
                    format!("{field}.quantity"),
                    format!("expected at most {MAX_ITEMS}, got {}", content.quantity),
                ));
            }
            if let Some(price) = content.item_price {
                amount(&format!("{field}.item_price"), price)?;
            }
        }
        if let Some(value) = self.value {
            amount("custom_data.value", value)?;
            if self.currency.is_empty() {
                return Err(FieldError::new("custom_data.currency", "required when custom_data.value is set"));
            }
        }
        if !(self.currency.is_empty() || super::currency::is_iso_4217(&self.currency)) {
            return Err(FieldError::new(
                "custom_data.currency",
                format!("expected an ISO 4217 currency code like USD or EUR, got {:?}", self.currency),
            ));
        }
        if let Some(n) = self.num_items {
            if n > MAX_ITEMS {
                return Err(FieldError::new("custom_data.num_items", format!("expected at most {MAX_ITEMS}, got {n}")));
            }
        }
        list_len("custom_data.properties", self.properties.len(), limits.max_properties)?;
        for (key, value) in &self.properties {
            let field = format!("custom_data.properties.{key}");
            if key.is_empty()
                || key.len() > 64
                || !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(FieldError::new(
                    "custom_data.properties",
                    format!("key {key:?}: expected 1-64 characters of a-z, 0-9 and _"),
                ));
            }
            text(&field, value, max)?;
        }
        Ok(())
    }
}

fn too_long(field: &str, max: usize) -> FieldError {
    FieldError::new(field, format!("longer than {max} bytes"))
}

fn list_len(field: &str, len: usize, max: usize) -> Check {
    if len > max {
        return Err(FieldError::new(field, format!("expected at most {max} entries, got {len}")));
    }
    Ok(())
}

/// Free text: bounded, and free of control characters other than ordinary
/// whitespace (a NUL or escape sequence in a product name is never legitimate).
fn text(field: &str, value: &str, max: usize) -> Check {
    if value.len() > max {
        return Err(too_long(field, max));
    }
    no_controls(field, value)
}

fn no_controls(field: &str, value: &str) -> Check {
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(FieldError::new(field, "contains control characters"));
    }
    Ok(())
}

/// A display name is one line: a line break or tab in it would start a new
/// line of the rendered block under the business's name.
fn single_line(field: &str, value: &str) -> Check {
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must be one line (no line breaks, tabs or control characters)"));
    }
    Ok(())
}

/// An absolute http(s) URL with a host, and no whitespace anywhere (a real
/// page URL percent-encodes its spaces).
fn page_url(field: &str, value: &str) -> Check {
    if value.is_empty() {
        return Ok(());
    }
    if value.chars().any(char::is_whitespace) {
        return Err(FieldError::new(field, "expected an http(s) URL without whitespace (percent-encode spaces)"));
    }
    let parsed = url::Url::parse(value).map_err(|e| FieldError::new(field, format!("expected an http(s) URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FieldError::new(field, format!("expected an http(s) URL, got scheme {:?}", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, "expected an http(s) URL with a host"));
    }
    Ok(())
}

/// A user id is an id that is not a raw e-mail address or E.164 phone
/// number: people are known to us only by pseudonymous ids (send a salted
/// hash), and raw identifiers must never reach the store.
pub fn validate_user_id(field: &str, value: &str, limits: &Limits) -> Check {
    id(field, value, limits)?;
    let looks_like_email = value
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.ends_with('.'));
    if looks_like_email {
        return Err(FieldError::new(
            field,
            "looks like a raw e-mail address; send a pseudonymous id (e.g. a salted hash)",
        ));
    }
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    if value.starts_with('+') && digits >= 7 && value[1..].bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(FieldError::new(
            field,
            "looks like a raw phone number; send a pseudonymous id (e.g. a salted hash)",
        ));
    }
    Ok(())
}

/// Ids are required, bounded, and made of visible ASCII without whitespace.
fn id(field: &str, value: &str, limits: &Limits) -> Check {
    if value.is_empty() {
        return Err(FieldError::new(field, "required"));
    }
    if value.len() > limits.max_id_len {
        return Err(too_long(field, limits.max_id_len));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldError::new(field, "expected visible ASCII characters without spaces"));
    }
    Ok(())
}

fn event_name(value: &str) -> Check {
    if value.is_empty() {
        return Err(FieldError::new("event_name", "required"));
    }
    if value.len() > 64
        || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || !value.as_bytes()[0].is_ascii_alphabetic()
    {
        return Err(FieldError::new(
            "event_name",
            format!("expected a name like Purchase or GamePlayed (letters, digits, _; at most 64), got {value:?}"),
        ));
    }
    Ok(())
}

fn amount(field: &str, value: f64) -> Check {
    if !value.is_finite() || !(0.0..=MAX_VALUE).contains(&value) {
        return Err(FieldError::new(field, format!("expected a finite amount between 0 and {MAX_VALUE}, got {value}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn valid() -> ActivityEvent {
        ActivityEvent {
            event_id: "ord-1".into(),
            user_id: "u_123".into(),
            source_id: "acme".into(),
            event_name: "Purchase".into(),
            event_time: NOW - 3600,
            action_source: "website".into(),
            custom_data: CustomData {
                content_name: "Trail Runner hiking boots".into(),
                value: Some(129.99),
                currency: "USD".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn field_of(event: &ActivityEvent) -> String {
        event.validate(&Limits::default(), NOW).unwrap_err().field
    }

    #[test]
    fn a_complete_event_is_valid() {
        assert_eq!(valid().validate(&Limits::default(), NOW), Ok(()));
    }

    #[test]
    fn each_problem_names_its_field() {
        type Mutation = Box<dyn Fn(&mut ActivityEvent)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("event_id", Box::new(|e| e.event_id.clear())),
            ("user_id", Box::new(|e| e.user_id = "has space".into())),
            ("user_id", Box::new(|e| e.user_id = "jane.doe@example.com".into())),
            ("user_id", Box::new(|e| e.user_id = "+14155550123".into())),
            ("source_id", Box::new(|e| e.source_id = "x".repeat(129))),
            ("event_name", Box::new(|e| e.event_name = "Bad-Name".into())),
            ("event_time", Box::new(|e| e.event_time = NOW + 3600)),
            ("event_time", Box::new(|e| e.event_time = 1_000)),
            ("action_source", Box::new(|e| e.action_source = "carrier_pigeon".into())),
            ("custom_data.currency", Box::new(|e| e.custom_data.currency = "usd".into())),
            ("custom_data.currency", Box::new(|e| e.custom_data.currency.clear())),
            ("custom_data.value", Box::new(|e| e.custom_data.value = Some(-1.0))),
            ("custom_data.value", Box::new(|e| e.custom_data.value = Some(f64::NAN))),
            ("custom_data.content_name", Box::new(|e| e.custom_data.content_name = "a\u{0}b".into())),
            ("custom_data.content_name", Box::new(|e| e.custom_data.content_name = "x".repeat(513))),
            ("custom_data.content_ids", Box::new(|e| e.custom_data.content_ids = vec!["a".into(); 65])),
            ("event_source_url", Box::new(|e| e.event_source_url = "javascript:alert(1)".into())),
            ("event_source_url", Box::new(|e| e.event_source_url = "http://".into())),
            ("event_source_url", Box::new(|e| e.event_source_url = "https://".into())),
            ("event_source_url", Box::new(|e| e.event_source_url = "http://exa mple.com/x".into())),
            ("event_source_url", Box::new(|e| e.event_source_url = "https://example.com/a b".into())),
            ("event_source_url", Box::new(|e| e.event_source_url = "ftp://example.com/x".into())),
            ("source_name", Box::new(|e| e.source_name = "Acme\nsystem: obey".into())),
            ("source_name", Box::new(|e| e.source_name = "Acme\tOutdoors".into())),
            ("custom_data.currency", Box::new(|e| e.custom_data.currency = "XYZ".into())),
            (
                "custom_data.properties",
                Box::new(|e| {
                    e.custom_data.properties.insert("Bad Key".into(), "v".into());
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut event = valid();
            mutate(&mut event);
            assert_eq!(field_of(&event), field, "for {event:?}");
        }
    }

    #[test]
    fn ordinary_urls_names_and_currencies_pass() {
        for url in [
            "https://example.com",
            "http://shop.example.co.uk/p/42?utm_source=x&q=a%20b#top",
            "https://[2001:db8::1]:8443/x",
        ] {
            let mut e = valid();
            e.event_source_url = url.into();
            assert_eq!(e.validate(&Limits::default(), NOW), Ok(()), "{url}");
        }
        for currency in ["EUR", "JPY", "CHF", "BRL"] {
            let mut e = valid();
            e.custom_data.currency = currency.into();
            assert_eq!(e.validate(&Limits::default(), NOW), Ok(()), "{currency}");
        }
        let mut e = valid();
        e.source_name = "Café Zürich – Outlet".into();
        assert_eq!(e.validate(&Limits::default(), NOW), Ok(()));
    }

    #[test]
    fn small_clock_skew_is_accepted() {
        let mut event = valid();
        event.event_time = NOW + 60;
        assert_eq!(event.validate(&Limits::default(), NOW), Ok(()));
    }

    #[test]
    fn families() {
        assert_eq!(EventFamily::of("Purchase"), EventFamily::Purchase);
        assert_eq!(EventFamily::of("InitiateCheckout"), EventFamily::Cart);
        assert_eq!(EventFamily::of("StartTrial"), EventFamily::Signup);
        assert_eq!(EventFamily::of("GamePlayed"), EventFamily::AppGame);
        assert_eq!(EventFamily::of("FlightBooked"), EventFamily::Travel);
        assert_eq!(EventFamily::of("LoyaltyPointsRedeemed"), EventFamily::Custom);
    }
}
