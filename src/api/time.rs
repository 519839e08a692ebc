//! The one place where Kubernetes `Time` (built on `jiff`) meets `chrono`.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Converts a Kubernetes `Time` into a `chrono` UTC time.
pub fn from_k8s(t: &Time) -> DateTime<Utc> {
    let ts = t.0;
    DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond().max(0) as u32).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Converts a `chrono` UTC time into a Kubernetes `Time` (second precision, as
/// the API server stores it).
pub fn to_k8s(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_second_precision() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T04:16:48Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_k8s(&to_k8s(t)), t);
    }
}
