//! Keyset paging for list endpoints: `limit` (1 to 200, default 50) and an opaque
//! `cursor` naming the last row of the previous page by `(time, id)`.

use crate::problem::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub struct Keyset {
    pub limit: i64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl Keyset {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> ApiResult<Self> {
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::Invalid {
                detail: format!("limit must be between 1 and 200, not {limit}"),
            });
        }
        let after = match cursor {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| ApiError::Invalid {
                detail: "cursor is not one this API issued; start again without it".into(),
            })?),
        };
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than a page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Drops the extra row and returns the cursor of the next page, if there is one.
    pub fn finish<T>(
        &self,
        rows: &mut Vec<T>,
        key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    ) -> Option<String> {
        if rows.len() as i64 <= self.limit {
            return None;
        }
        rows.truncate(self.limit as usize);
        rows.last().map(|row| {
            let (time, id) = key(row);
            format!("{}_{id}", time.timestamp_micros())
        })
    }
}

fn decode(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_ends_with_a_cursor_only_when_more_follow() {
        let keyset = Keyset::parse(Some(2), None).unwrap();
        let t = Utc::now();
        let rows: Vec<(DateTime<Utc>, Uuid)> = (0..3).map(|_| (t, Uuid::now_v7())).collect();
        let mut page = rows.clone();
        let cursor = keyset.finish(&mut page, |r| *r).unwrap();
        assert_eq!(page.len(), 2);
        let next = Keyset::parse(Some(2), Some(&cursor)).unwrap();
        assert_eq!(next.after.unwrap().1, rows[1].1);
        let mut last = rows[2..].to_vec();
        assert!(keyset.finish(&mut last, |r| *r).is_none());
        assert!(Keyset::parse(Some(0), None).is_err());
        assert!(Keyset::parse(None, Some("nope")).is_err());
    }
}
