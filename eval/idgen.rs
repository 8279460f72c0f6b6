//! Generated innocent field values full of opaque identifiers — UUIDs,
//! hashes, serials, licence keys, tracking numbers, order references,
//! random tokens — as businesses send them in product names, searches,
//! cart titles, categories, shop names, destinations and achievements.
//!
//! Training material only (`injection-train --id-negatives`): the heads up
//! to v7 read such strings as encoded payloads when the sentence around
//! them was short or unusual (`Purchased "<32 hex digits>" at shop`),
//! because the development corpora hold few of them and only one author's.
//! Nothing here comes from the frozen test corpus or the opaque-id probe
//! corpus (`eval/injection/ids-probe.jsonl`, written at the same time by an
//! author who never saw this file). It was written by the author of the
//! opaque-id integration test (`tests/it/ranking.rs`) right after reading
//! it, and covers that test's shapes (UUIDs, `1Z` tracking numbers, sha1s,
//! four-character voucher groups, `where to buy …`): that test is a
//! regression test, not an out-of-sample measure; the probe corpus is.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HEX: &[u8] = b"0123456789abcdef";
const ALNUM_UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DIGITS: &[u8] = b"0123456789";

fn draw(rng: &mut ChaCha8Rng, alphabet: &[u8], n: usize) -> String {
    (0..n).map(|_| char::from(*alphabet.choose(rng).expect("alphabet"))).collect()
}

/// One opaque identifier and a short label of what it is (used by some
/// templates, e.g. "S/N", "tracking").
fn identifier(rng: &mut ChaCha8Rng) -> (String, &'static str) {
    let upper = rng.random_bool(0.3);
    let case = |s: String| if upper { s.to_uppercase() } else { s };
    match rng.random_range(0..24) {
        0 | 1 => {
            let h = draw(rng, HEX, 32);
            let id = format!(
                "{}-{}-4{}-{}{}-{}",
                &h[..8],
                &h[8..12],
                &h[13..16],
                ["8", "9", "a", "b"].choose(rng).unwrap(),
                &h[17..20],
                &h[20..]
            );
            (case(id), "UUID")
        }
        2 => (case(draw(rng, HEX, 32)), "id"),
        3 => {
            let n = *[7usize, 8, 10, 12].choose(rng).unwrap();
            (case(draw(rng, HEX, n)), "rev")
        }
        4 => (draw(rng, HEX, 40), "sha1"),
        5 => (draw(rng, HEX, 64), "sha256"),
        6 => (draw(rng, HEX, 32), "md5"),
        7 => {
            let prefix = [
                "prod_",
                "sku_",
                "ord_",
                "cus_",
                "itm_",
                "pi_",
                "tok_",
                "ref_",
                "evt_",
                "cart_",
                "px",
                "ID",
                "TEST",
                "DEMO",
                "SAMPLE",
                "TMP",
                "QA",
                "X",
                "PLACEHOLDER",
                "dummy",
                "item",
            ]
            .choose(rng)
            .unwrap();
            let n = rng.random_range(8..=28);
            let body = if rng.random_bool(0.5) { draw(rng, HEX, n) } else { draw(rng, BASE64URL[..62].as_ref(), n) };
            let digit = if rng.random_bool(0.4) { rng.random_range(0..10).to_string() } else { String::new() };
            (format!("{prefix}{digit}{body}"), "id")
        }
        8 => {
            let n = rng.random_range(16..=32);
            (draw(rng, BASE32, n), "token")
        }
        9 => {
            let n = rng.random_range(16..=44);
            (draw(rng, BASE64URL, n), "token")
        }
        10 => {
            let groups = rng.random_range(4..=5);
            let len = if groups == 5 { 5 } else { 4 };
            ((0..groups).map(|_| draw(rng, ALNUM_UPPER, len)).collect::<Vec<_>>().join("-"), "key")
        }
        11 => {
            let groups = rng.random_range(3..=4);
            (
                (0..groups).map(|_| draw(rng, ALNUM_UPPER, 4)).collect::<Vec<_>>().join(if rng.random_bool(0.8) {
                    "-"
                } else {
                    " "
                }),
                "code",
            )
        }
        12 => match rng.random_range(0..5) {
            0 => (format!("1Z{}{}", draw(rng, ALNUM_UPPER, 6), draw(rng, DIGITS, 10)), "tracking"),
            1 => (draw(rng, DIGITS, 22), "tracking"),
            2 => (format!("{}{}GB", draw(rng, b"ABCDEFGHJKLMNPRSTUVWXYZ", 2), draw(rng, DIGITS, 9)), "tracking"),
            3 => (draw(rng, DIGITS, 12), "tracking"),
            _ => (format!("JD{}", draw(rng, DIGITS, 18)), "tracking"),
        },
        13 => {
            let year = rng.random_range(2019..=2026);
            let id = match rng.random_range(0..4) {
                0 => {
                    let n = rng.random_range(5..=10);
                    format!("#{}", draw(rng, DIGITS, n))
                }
                1 => format!("ORD-{year}-{}", draw(rng, DIGITS, 6)),
                2 => format!("INV/{year}/{}", draw(rng, DIGITS, 5)),
                _ => format!("{}{}", draw(rng, b"ABCDEFGHJKLMNPQRSTUVWXYZ", 3), draw(rng, DIGITS, 8)),
            };
            (id, "order")
        }
        14 => (draw(rng, ALNUM_UPPER, 6), "booking ref"),
        15 => (draw(rng, DIGITS, 15), "IMEI"),
        16 => (
            (0..6).map(|_| draw(rng, HEX, 2)).collect::<Vec<_>>().join(if rng.random_bool(0.7) { ":" } else { "-" }),
            "MAC",
        ),
        17 => (draw(rng, b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789", 17), "VIN"),
        18 => {
            (format!("{}{}", ["978", "979", "40", "50", "87", "0"].choose(rng).unwrap(), draw(rng, DIGITS, 10)), "EAN")
        }
        19 => (format!("#{}", draw(rng, HEX, 6)), "colour"),
        20 => {
            let v = format!("{}.{}.{}", rng.random_range(0..12), rng.random_range(0..40), rng.random_range(0..200));
            let id = match rng.random_range(0..3) {
                0 => {
                    let rc = rng.random_range(1..6);
                    format!("v{v}-rc{rc}+build.{}", draw(rng, HEX, 7))
                }
                1 => format!("{v} ({})", draw(rng, HEX, 8)),
                _ => format!("fw{v}_{}", draw(rng, DIGITS, 8)),
            };
            (id, "build")
        }
        21 => {
            let id = match rng.random_range(0..3) {
                0 => format!("IMG_2026{}_{}.jpg", draw(rng, DIGITS, 4), draw(rng, DIGITS, 6)),
                1 => format!("backup-{}.tar.gz", draw(rng, HEX, 12)),
                _ => format!("{}.pdf", draw(rng, HEX, 16)),
            };
            (id, "file")
        }
        22 => {
            if rng.random_bool(0.5) {
                (format!("0x{}", draw(rng, HEX, 40)), "wallet")
            } else {
                (format!("bc1q{}", draw(rng, b"qpzry9x8gf2tvdw0s3jn54khce6mua7l", 38)), "wallet")
            }
        }
        _ => (
            format!(
                "{}-{}-{}",
                draw(rng, b"ABCDEFGHJKLMNPQRSTUVWXYZ", 2),
                draw(rng, DIGITS, 4),
                draw(rng, ALNUM_UPPER, 1)
            ),
            "SKU",
        ),
    }
}

/// Product and thing nouns in several languages.
const NOUNS: &[&str] = &[
    "Phone case",
    "USB cable",
    "Replacement filter",
    "Router",
    "Graphics card",
    "Running shoes",
    "Backpack",
    "Coffee grinder",
    "Smart bulb",
    "Printer ink",
    "Gift card",
    "Concert ticket",
    "E-book",
    "Game key",
    "Ersatzakku",
    "Kaffeemaschine",
    "Druckerpatrone",
    "Wanderschuhe",
    "Chargeur",
    "Carte cadeau",
    "Housse",
    "Auriculares",
    "Funda",
    "Tarjeta regalo",
    "Cuffie",
    "Zaino",
    "Capa de celular",
    "Carregador",
    "Oplader",
    "Ładowarka",
    "Słuchawki",
    "Зарядка",
    "Чехол",
    "Şarj aleti",
    "充電器",
    "スマホケース",
    "充电线",
    "耳机",
    "충전기",
    "케이스",
    "Laddare",
    "Kuulokkeet",
    "Φορτιστής",
    "Nabíječka",
    "Sạc dự phòng",
    "Casing HP",
];

/// Labels in other languages for "order", "serial", "code".
const LABELS: &[&str] = &[
    "order",
    "Order no.",
    "S/N",
    "serial",
    "SKU",
    "ref",
    "item",
    "code",
    "key",
    "licence",
    "ticket",
    "Bestellnr.",
    "Seriennr.",
    "Art.-Nr.",
    "n° de commande",
    "réf.",
    "pedido",
    "n.º de serie",
    "codice",
    "ordine",
    "bestelnummer",
    "zamówienie",
    "заказ",
    "артикул",
    "sipariş no",
    "注文番号",
    "订单号",
    "주문번호",
    "ordernr",
    "αρ. παραγγελίας",
];

/// Searches around an identifier (`{}` is the identifier).
const SEARCHES: &[&str] = &[
    "where to buy {}",
    "track {}",
    "{} driver download",
    "{} manual pdf",
    "what is {}",
    "{} replacement",
    "is {} genuine",
    "{} price",
    "{} not working",
    "cancel order {}",
    "return label {}",
    "{} review",
    "sendungsverfolgung {}",
    "{} treiber",
    "suivi colis {}",
    "{} notice",
    "seguimiento {}",
    "{} precio",
    "traccia spedizione {}",
    "rastrear {}",
    "śledzenie przesyłki {}",
    "отследить {}",
    "{} kargo takip",
    "{} 追跡",
    "{} 查询",
    "{} 배송조회",
    "{} firmware update",
    "activate {}",
    "redeem {}",
    "{} warranty",
];

/// Shapes of a field value around an identifier (`{n}` noun, `{l}` label,
/// `{i}` the identifier).
const SHAPES: &[&str] = &[
    "{i}",
    "{i}",
    "{n} {i}",
    "{n} {i}",
    "{n} - {i}",
    "{n} ({l} {i})",
    "{l} {i}",
    "{l}: {i}",
    "{i} {n}",
    "{n}, {l} {i}",
    "{n} [{i}]",
    "{i} / {n}",
    "{n} {l}{i}",
    "{n}_{i}",
    "{i}-{n}",
];

/// `n` distinct generated field values, deterministic in `seed`.
pub fn values(n: usize, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (id, what) = identifier(&mut rng);
        let text = if rng.random_bool(0.3) {
            SEARCHES.choose(&mut rng).unwrap().replace("{}", &id)
        } else {
            let label = if rng.random_bool(0.5) { what } else { LABELS.choose(&mut rng).unwrap() };
            SHAPES
                .choose(&mut rng)
                .unwrap()
                .replace("{n}", NOUNS.choose(&mut rng).unwrap())
                .replace("{l}", label)
                .replace("{i}", &id)
        };
        if text.chars().count() <= 120 && seen.insert(text.clone()) {
            out.push(text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_distinct_bounded_and_deterministic() {
        let a = values(500, 7);
        assert_eq!(a.len(), 500);
        assert_eq!(a, values(500, 7));
        assert_ne!(a, values(500, 8));
        // A field the engine accepts: at most 128 bytes (`source_name`'s
        // limit, the tightest), no control characters.
        assert!(a.iter().all(|t| !t.is_empty() && t.len() <= 128 && !t.chars().any(char::is_control)));
        assert_eq!(a.iter().collect::<std::collections::HashSet<_>>().len(), 500);
        // Mostly machine-shaped: at least 80 % hold a run of six or more
        // ASCII letters and digits with a digit in it.
        let opaque = a
            .iter()
            .filter(|t| {
                t.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w.len() >= 6 && w.chars().any(|c| c.is_ascii_digit()))
            })
            .count();
        assert!(opaque * 10 >= a.len() * 8, "{opaque} of {}", a.len());
    }
}
