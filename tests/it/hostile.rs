//! Hostile input without a server: arbitrary bytes decoded as every request
//! type, and arbitrary events through conversion, validation and
//! verbalisation. Nothing may panic; what validation accepts must verbalise
//! into one bounded line. Bounded runs in CI (`PROPTEST_CASES` raises them;
//! the fuzzing command is in README "Tests"). A failing case proptest finds
//! is saved under `tests/proptest-regressions/hostile.txt` and replayed first
//! on every later run.

use context_engine::api::{context_request_from_pb, event_from_pb};
use context_engine::domain::Limits;
use context_engine::pb;
use context_engine::verbalize::verbalize;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use prost::Message;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Any text: empty, ASCII, control characters, bidi and zero-width
/// characters, delimiter look-alikes, long runs.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9 ._-]{1,40}",
        any::<String>(),
        "[\\x00-\\x1f\\u{202e}\\u{200b}<>\\[\\]|]{0,20}",
        (any::<char>(), 0usize..5000).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Purchase",
            "AddToCart",
            "ViewContent",
            "Search",
            "CompleteRegistration",
            "Subscribe",
            "StartTrial",
            "GamePlayed",
            "TripBooked",
            "Document",
        ])
        .prop_map(String::from),
        text(),
    ]
}

fn number() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), any::<f64>().prop_map(Some), (0.0f64..1e6).prop_map(Some)]
}

fn event() -> impl Strategy<Value = pb::ActivityEvent> {
    (
        (text(), text(), text(), text(), event_name(), any::<i64>(), text()),
        (text(), text(), vec(text(), 0..4), number(), text(), text()),
        (
            vec((text(), any::<u32>(), number(), text()), 0..4),
            btree_map(text(), text(), 0..4),
            text(),
            vec(text(), 0..3),
        ),
    )
        .prop_map(
            |(
                (event_id, user_id, source_id, source_name, event_name, event_time, action_source),
                (content_name, category, content_ids, value, currency, search_string),
                (contents, properties, url, dpo),
            )| pb::ActivityEvent {
                event_id,
                user_id,
                source_id,
                source_name,
                event_name,
                event_time,
                action_source,
                custom_data: Some(pb::CustomData {
                    content_name,
                    content_category: category,
                    content_ids,
                    contents: contents
                        .into_iter()
                        .map(|(id, quantity, item_price, title)| pb::Content { id, quantity, item_price, title })
                        .collect(),
                    value,
                    currency,
                    search_string,
                    properties: properties.into_iter().collect(),
                    ..Default::default()
                }),
                event_source_url: url,
                data_processing_options: dpo,
            },
        )
}

/// A valid event, with one field replaced by hostile content, so cases get
/// past the first check and reach verbalisation.
fn mostly_valid_event() -> impl Strategy<Value = pb::ActivityEvent> {
    (event_name(), text(), text(), number(), prop::sample::select(vec!["EUR", "USD", "", "eur", "XXXX"]), text())
        .prop_map(|(event_name, content_name, search, value, currency, title)| pb::ActivityEvent {
            event_id: "e1".into(),
            user_id: "u1".into(),
            source_id: "shop".into(),
            source_name: "Shop".into(),
            event_name,
            event_time: 1_750_000_000,
            action_source: "website".into(),
            custom_data: Some(pb::CustomData {
                content_name,
                search_string: search,
                value,
                currency: currency.into(),
                contents: vec![pb::Content { id: "sku".into(), quantity: 2, item_price: Some(9.5), title }],
                ..Default::default()
            }),
            ..Default::default()
        })
}

fn check_event(e: pb::ActivityEvent) -> Result<(), TestCaseError> {
    let event = event_from_pb(e);
    let limits = Limits::default();
    if event.validate(&limits, 1_800_000_000).is_ok() {
        let sentence = verbalize(&event);
        prop_assert!(!sentence.is_empty(), "accepted event verbalised to nothing: {event:?}");
        prop_assert!(!sentence.contains('\n'), "verbalised text spans lines: {sentence:?}");
        prop_assert!(sentence.chars().count() <= 16 * 1024, "verbalised text is unbounded: {} chars", sentence.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(bytes in vec(any::<u8>(), 0..512)) {
        if let Ok(r) = pb::IngestRequest::decode(bytes.as_slice()) {
            for e in r.events {
                check_event(e)?;
            }
        }
        if let Ok(r) = pb::GetContextRequest::decode(bytes.as_slice()) {
            let _ = context_request_from_pb(r, "fuzz".into());
        }
        let _ = pb::EmbedRequest::decode(bytes.as_slice());
        let _ = pb::SetConsentRequest::decode(bytes.as_slice());
        let _ = pb::ListConsentsRequest::decode(bytes.as_slice());
        let _ = pb::EraseUserRequest::decode(bytes.as_slice());
        let _ = pb::ExplainAccessRequest::decode(bytes.as_slice());
        let _ = pb::ExportUserRequest::decode(bytes.as_slice());
    }

    #[test]
    fn encoded_requests_with_hostile_fields_round_trip(e in event(), query in text(), user in text()) {
        let request = pb::IngestRequest { events: vec![e.clone()] };
        let decoded = pb::IngestRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(&decoded.events[0], &e);
        let get = pb::GetContextRequest { user_id: user, query, max_snippets: 3, ..Default::default() };
        let _ = context_request_from_pb(pb::GetContextRequest::decode(get.encode_to_vec().as_slice()).unwrap(), "fuzz".into());
    }

    #[test]
    fn arbitrary_events_validate_and_verbalise_without_panic(e in event()) {
        check_event(e)?;
    }

    #[test]
    fn accepted_hostile_fields_verbalise_into_one_bounded_line(e in mostly_valid_event()) {
        check_event(e)?;
    }
}
