//! Units of the topology file: sizes (`128Mi`), rates (`100mbit`), durations (`10ms`) and
//! percentages (`0.5%`), parsed exactly (decimal arithmetic, no floating point) and printed
//! back in a form that parses to the same value.

use super::model::Impair;

/// Why a value could not be read, with a hint on how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub message: String,
    pub hint: String,
}

fn fail<T>(message: String, hint: String) -> Result<T, UnitError> {
    Err(UnitError { message, hint })
}

/// A non-negative decimal number: `digits / 10^scale`.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    digits: u128,
    scale: u32,
}

impl Decimal {
    /// `[0-9]+(\.[0-9]+)?`, at most 30 digits.
    fn parse(text: &str) -> Option<Decimal> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) || text.ends_with('.') {
            return None;
        }
        if int.len() + frac.len() > 30 {
            return None;
        }
        let digits = format!("{int}{frac}").parse().ok()?;
        let scale = u32::try_from(frac.len()).ok()?;
        Some(Decimal { digits, scale })
    }

    /// `self * mult` when that is a whole number.
    fn times(self, mult: u128) -> Option<u128> {
        let den = 10u128.checked_pow(self.scale)?;
        let num = self.digits.checked_mul(mult)?;
        (num % den == 0).then_some(num / den)
    }
}

/// Splits `128Mi` into `128` and `Mi`.
fn split(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn number<'a>(text: &'a str, what: &str, example: &str) -> Result<(Decimal, &'a str), UnitError> {
    let text = text.trim();
    let (num, suffix) = split(text);
    match Decimal::parse(num) {
        Some(d) => Ok((d, suffix)),
        None => fail(
            format!("invalid {what} '{text}'"),
            format!("write a non-negative number and a unit, e.g. '{example}'"),
        ),
    }
}

const SIZE_UNITS: [(&str, u128); 5] = [
    ("", 1),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
];

/// Bytes from `65536`, `128Mi`, `1.5Gi`. Only binary units (Ki, Mi, Gi, Ti).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let (d, suffix) = number(text, "size", "128Mi")?;
    let Some(&(_, mult)) = SIZE_UNITS.iter().find(|(u, _)| *u == suffix) else {
        let right = size_unit_for(suffix)
            .map(|u| {
                format!(
                    "did you mean '{}{u}'? ",
                    text.trim().trim_end_matches(suffix)
                )
            })
            .unwrap_or_default();
        return fail(
            format!("unknown size unit '{suffix}' in '{}'", text.trim()),
            format!("{right}sizes take Ki, Mi, Gi or Ti (powers of 1024), or plain bytes"),
        );
    };
    let Some(bytes) = d.times(mult) else {
        return fail(
            format!("size '{}' is not a whole number of bytes", text.trim()),
            "use a smaller unit, e.g. '1536Mi' instead of '1.5Gi'".to_string(),
        );
    };
    u64::try_from(bytes).or_else(|_| {
        fail(
            format!("size '{}' is too large", text.trim()),
            "sizes must fit in 64 bits".to_string(),
        )
    })
}

/// The binary unit someone writing `MB`, `m` or `MiB` most likely meant.
fn size_unit_for(suffix: &str) -> Option<&'static str> {
    let first = suffix.chars().next()?.to_ascii_uppercase();
    let rest = suffix.get(1..)?.to_ascii_lowercase();
    if !matches!(rest.as_str(), "" | "b" | "i" | "ib") {
        return None;
    }
    match first {
        'K' => Some("Ki"),
        'M' => Some("Mi"),
        'G' => Some("Gi"),
        'T' => Some("Ti"),
        _ => None,
    }
}

const RATE_UNITS: [(&str, u128); 5] = [
    ("", 1),
    ("bit", 1),
    ("kbit", 1_000),
    ("mbit", 1_000_000),
    ("gbit", 1_000_000_000),
];

/// Bits per second from `100mbit`, `1.5gbit`, `64000` (decimal units).
pub fn parse_rate(text: &str) -> Result<u64, UnitError> {
    let (d, suffix) = number(text, "rate", "100mbit")?;
    let Some(&(_, mult)) = RATE_UNITS.iter().find(|(u, _)| *u == suffix) else {
        let right = rate_unit_for(suffix)
            .map(|u| {
                format!(
                    "did you mean '{}{u}'? ",
                    text.trim().trim_end_matches(suffix)
                )
            })
            .unwrap_or_default();
        return fail(
            format!("unknown rate unit '{suffix}' in '{}'", text.trim()),
            format!("{right}rates take bit, kbit, mbit or gbit (bits per second, powers of 1000)"),
        );
    };
    let bits = match d.times(mult) {
        Some(0) => {
            return fail(
                format!("rate '{}' is zero", text.trim()),
                "give a rate above zero, or remove 'rate' for no limit".to_string(),
            )
        }
        Some(b) => b,
        None => {
            return fail(
                format!(
                    "rate '{}' is not a whole number of bits per second",
                    text.trim()
                ),
                "use a smaller unit, e.g. '1500kbit'".to_string(),
            )
        }
    };
    u64::try_from(bits).or_else(|_| {
        fail(
            format!("rate '{}' is too large", text.trim()),
            "rates must fit in 64 bits".to_string(),
        )
    })
}

fn rate_unit_for(suffix: &str) -> Option<&'static str> {
    let lower = suffix.to_ascii_lowercase();
    let first = lower.chars().next()?;
    let rest = lower.get(1..)?;
    if !matches!(rest, "" | "bit" | "bps" | "bit/s" | "b" | "bits") {
        return None;
    }
    match first {
        'k' => Some("kbit"),
        'm' => Some("mbit"),
        'g' => Some("gbit"),
        'b' => Some("bit"),
        _ => None,
    }
}

const DURATION_UNITS: [(&str, u128); 3] = [("us", 1), ("ms", 1_000), ("s", 1_000_000)];

/// Microseconds from `500us`, `10ms`, `1.5s`. A unit is required.
pub fn parse_duration_us(text: &str) -> Result<u64, UnitError> {
    let (d, suffix) = number(text, "duration", "10ms")?;
    if suffix.is_empty() {
        return fail(
            format!("duration '{}' has no unit", text.trim()),
            format!("add a unit: '{}ms' (units: us, ms, s)", text.trim()),
        );
    }
    let Some(&(_, mult)) = DURATION_UNITS.iter().find(|(u, _)| *u == suffix) else {
        return fail(
            format!("unknown duration unit '{suffix}' in '{}'", text.trim()),
            "durations take us, ms or s, e.g. '10ms'".to_string(),
        );
    };
    let Some(us) = d.times(mult) else {
        return fail(
            format!(
                "duration '{}' is not a whole number of microseconds",
                text.trim()
            ),
            "durations are counted in whole microseconds, e.g. '1500us'".to_string(),
        );
    };
    u64::try_from(us).or_else(|_| {
        fail(
            format!("duration '{}' is too large", text.trim()),
            "durations must fit in 64 bits of microseconds".to_string(),
        )
    })
}

/// Parts per million from `0.5%` (0% to 100%, at most 4 decimals).
pub fn parse_ppm(text: &str) -> Result<u32, UnitError> {
    let trimmed = text.trim();
    let Some(num) = trimmed.strip_suffix('%') else {
        return fail(
            format!("percentage '{trimmed}' has no '%'"),
            format!("write it as a percentage, e.g. '{trimmed}%'"),
        );
    };
    let Some(d) = Decimal::parse(num.trim_end()) else {
        return fail(
            format!("invalid percentage '{trimmed}'"),
            "write a number from 0 to 100 followed by '%', e.g. '0.5%'".to_string(),
        );
    };
    let Some(ppm) = d.times(10_000) else {
        return fail(
            format!("percentage '{trimmed}' is more precise than 0.0001%"),
            "use at most 4 decimals, e.g. '0.0001%'".to_string(),
        );
    };
    if ppm > 1_000_000 {
        return fail(
            format!("percentage '{trimmed}' is over 100%"),
            "write a value from 0% to 100%".to_string(),
        );
    }
    u32::try_from(ppm).or_else(|_| fail(format!("invalid percentage '{trimmed}'"), String::new()))
}

/// The values of a link's `impair:` keys as text, as `topo impair` takes them
/// (`--delay 50ms --loss 1%`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImpairText {
    pub delay: Option<String>,
    pub jitter: Option<String>,
    pub loss: Option<String>,
    pub corrupt: Option<String>,
    pub duplicate: Option<String>,
    pub reorder: Option<String>,
    pub rate: Option<String>,
}

/// An impairment from its values as text, each read with the parser of its key in the file;
/// the first that does not parse (in the order of the fields) is the error.
pub fn parse_impair(text: &ImpairText) -> Result<Impair, UnitError> {
    fn one<T>(
        value: &Option<String>,
        parse: fn(&str) -> Result<T, UnitError>,
    ) -> Result<Option<T>, UnitError> {
        value.as_deref().map(parse).transpose()
    }
    Ok(Impair {
        delay_us: one(&text.delay, parse_duration_us)?,
        jitter_us: one(&text.jitter, parse_duration_us)?,
        loss_ppm: one(&text.loss, parse_ppm)?,
        corrupt_ppm: one(&text.corrupt, parse_ppm)?,
        duplicate_ppm: one(&text.duplicate, parse_ppm)?,
        reorder_ppm: one(&text.reorder, parse_ppm)?,
        rate_bps: one(&text.rate, parse_rate)?,
    })
}

/// `128Mi`, `1Gi`, `1000` (the largest binary unit that divides the value exactly).
pub fn format_bytes(bytes: u64) -> String {
    format_with(u128::from(bytes), &SIZE_UNITS[1..], "")
}

/// `100mbit`, `1500kbit`, `7bit`.
pub fn format_rate(bps: u64) -> String {
    format_with(u128::from(bps), &RATE_UNITS[2..], "bit")
}

/// `10ms`, `1s`, `1500us`.
pub fn format_duration_us(us: u64) -> String {
    format_with(u128::from(us), &DURATION_UNITS[1..], "us")
}

fn format_with(value: u128, units: &[(&str, u128)], base: &str) -> String {
    let unit = units
        .iter()
        .rev()
        .find(|(_, m)| value != 0 && value % m == 0);
    match unit {
        Some((u, m)) => format!("{}{u}", value / m),
        None => format!("{value}{base}"),
    }
}

/// `0.5%`, `100%`, `0.0001%`.
pub fn format_ppm(ppm: u32) -> String {
    let int = ppm / 10_000;
    let frac = ppm % 10_000;
    if frac == 0 {
        return format!("{int}%");
    }
    let frac = format!("{frac:04}");
    format!("{int}.{}%", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128Mi"), Ok(128 << 20));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("1.5Gi"), Ok(1536 << 20));
        assert_eq!(parse_size("2Ti"), Ok(2 << 40));
        let e = parse_size("128MB").unwrap_err();
        assert!(e.message.contains("unknown size unit 'MB'"), "{e:?}");
        assert!(e.hint.contains("did you mean '128Mi'"), "{e:?}");
        assert!(parse_size("128M").unwrap_err().hint.contains("128Mi"));
        assert!(parse_size("1.3").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999Ti").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("64000"), Ok(64_000));
        assert_eq!(parse_rate("10bit"), Ok(10));
        assert!(parse_rate("100Mbps").unwrap_err().hint.contains("100mbit"));
        assert!(parse_rate("0mbit").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_us("10ms"), Ok(10_000));
        assert_eq!(parse_duration_us("500us"), Ok(500));
        assert_eq!(parse_duration_us("1.5s"), Ok(1_500_000));
        assert!(parse_duration_us("10")
            .unwrap_err()
            .hint
            .contains("add a unit"));
        assert!(parse_duration_us("10m").is_err());
        assert!(parse_duration_us("0.5us").is_err());
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_ppm("0.5%"), Ok(5_000));
        assert_eq!(parse_ppm("100%"), Ok(1_000_000));
        assert_eq!(parse_ppm("0%"), Ok(0));
        assert_eq!(parse_ppm("0.0001%"), Ok(1));
        assert!(parse_ppm("0.5").unwrap_err().hint.contains("0.5%"));
        assert!(parse_ppm("101%").is_err());
        assert!(parse_ppm("0.00001%").is_err());
        assert!(parse_ppm("-1%").is_err());
    }

    #[test]
    fn impairments_as_text_read_as_the_file_reads_them() {
        let text = ImpairText {
            delay: Some("10ms".into()),
            jitter: Some("1ms".into()),
            loss: Some("0.5%".into()),
            corrupt: Some("0.1%".into()),
            duplicate: Some("1%".into()),
            reorder: Some("25%".into()),
            rate: Some("100mbit".into()),
        };
        let file = "name: imp\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n    impair: {delay: 10ms, jitter: 1ms, loss: 0.5%, corrupt: 0.1%, duplicate: 1%, reorder: 25%, rate: 100mbit}\n";
        let parsed = crate::spec::parse_str(file, std::path::Path::new("imp.yaml"));
        let from_file = match parsed.map(|t| t.links[0].impair.clone()) {
            Ok(Some(crate::spec::LinkImpair::Both(i))) => i,
            other => panic!("the file does not give one impairment: {other:?}"),
        };
        assert_eq!(parse_impair(&text), Ok(from_file));
        assert_eq!(parse_impair(&ImpairText::default()), Ok(Impair::default()));
        // The first value that does not parse is the error, with the file's message.
        let bad = ImpairText {
            delay: Some("10".into()),
            loss: Some("5".into()),
            ..ImpairText::default()
        };
        assert_eq!(
            parse_impair(&bad),
            Err(parse_duration_us("10").unwrap_err())
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_bytes(128 << 20), "128Mi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_rate(100_000_000), "100mbit");
        assert_eq!(format_rate(7), "7bit");
        assert_eq!(format_duration_us(10_000), "10ms");
        assert_eq!(format_duration_us(0), "0us");
        assert_eq!(format_ppm(5_000), "0.5%");
        assert_eq!(format_ppm(1_000_000), "100%");
        assert_eq!(format_ppm(1), "0.0001%");
    }

    #[test]
    fn round_trips() {
        let samples = [
            0u64,
            1,
            7,
            999,
            1000,
            1024,
            1500,
            65536,
            1 << 20,
            3 << 30,
            u64::MAX,
        ];
        for v in samples {
            assert_eq!(parse_size(&format_bytes(v)), Ok(v), "size {v}");
            assert_eq!(parse_duration_us(&format_duration_us(v)), Ok(v), "dur {v}");
            if v > 0 {
                assert_eq!(parse_rate(&format_rate(v)), Ok(v), "rate {v}");
            }
        }
        for v in [0u32, 1, 10, 5_000, 12_345, 999_999, 1_000_000] {
            assert_eq!(parse_ppm(&format_ppm(v)), Ok(v), "ppm {v}");
        }
    }
}
