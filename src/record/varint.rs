//! Zigzag varints as Kafka writes them inside records: `varint` (i32, at most
//! 5 bytes) and `varlong` (i64, at most 10 bytes), with their encoded sizes.
//!
//! Format: the value is zigzag-mapped (`0, -1, 1, -2, ..` -> `0, 1, 2, 3, ..`),
//! then written 7 bits at a time, least significant group first; every byte
//! but the last has its high bit set. This is protobuf's `sint32`/`sint64`.

use crate::error::FormatError;

/// Longest encoding of an i32 varint.
pub(crate) const MAX_VARINT_BYTES: usize = 5;
/// Longest encoding of an i64 varlong.
pub(crate) const MAX_VARLONG_BYTES: usize = 10;

/// Zigzag-maps an i32 so small magnitudes of either sign become small numbers.
#[inline]
pub(crate) const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Zigzag-maps an i64.
#[inline]
pub(crate) const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag32`].
#[inline]
const fn unzigzag32(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

/// Inverse of [`zigzag64`].
#[inline]
const fn unzigzag64(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Bytes needed to hold an unsigned value 7 bits at a time (at least 1).
#[inline(always)]
const fn groups_of_7(bits_used: u32) -> usize {
    // bits_used is 1..=64. (bits * 9 + 64) / 64 equals ceil(bits / 7) over
    // that range, with a shift instead of a division.
    ((bits_used * 9 + 64) >> 6) as usize
}

/// Encoded size of `v` as a zigzag varint (1..=5).
#[inline(always)]
pub(crate) const fn varint_size(v: i32) -> usize {
    groups_of_7(32 - (zigzag32(v) | 1).leading_zeros())
}

/// Encoded size of `v` as a zigzag varlong (1..=10).
#[inline(always)]
pub(crate) const fn varlong_size(v: i64) -> usize {
    groups_of_7(64 - (zigzag64(v) | 1).leading_zeros())
}

/// Writes the unsigned `u` at `buf[i..]` 7 bits at a time, low group first;
/// returns the index after it. Panics if `buf` is too short.
///
/// Index-based rather than a per-byte callback: the encoder chains these
/// calls through one record, and the one-byte case (attributes, deltas,
/// lengths below 64) takes a single store.
#[inline(always)]
fn put_unsigned(buf: &mut [u8], mut i: usize, mut u: u64) -> usize {
    if u < 0x80 {
        buf[i] = u as u8;
        return i + 1;
    }
    while u >= 0x80 {
        buf[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    buf[i] = u as u8;
    i + 1
}

/// Writes `v` as a zigzag varint ([`varint_size`] bytes) at `buf[i..]`;
/// returns the index after it.
#[inline(always)]
pub(crate) fn put_varint(buf: &mut [u8], i: usize, v: i32) -> usize {
    put_unsigned(buf, i, u64::from(zigzag32(v)))
}

/// Writes `v` as a zigzag varlong ([`varlong_size`] bytes) at `buf[i..]`;
/// returns the index after it.
#[inline(always)]
pub(crate) fn put_varlong(buf: &mut [u8], i: usize, v: i64) -> usize {
    put_unsigned(buf, i, zigzag64(v))
}

/// Reads an unsigned varint of at most `max_bytes` bytes at `*pos`, advancing it.
///
/// The last permitted byte may only carry the bits that still fit in
/// `value_bits`; anything else is [`FormatError::BadVarint`], as is a
/// continuation bit on it. Running off the end of `buf` is `Truncated`.
#[inline]
fn get_unsigned(
    buf: &[u8],
    pos: &mut usize,
    max_bytes: usize,
    value_bits: u32,
) -> Result<u64, FormatError> {
    let start = *pos;
    let mut result: u64 = 0;
    for i in 0..max_bytes {
        let at = start + i;
        let Some(&b) = buf.get(at) else {
            return Err(FormatError::Truncated {
                needed: at as u64 + 1,
                available: buf.len() as u64,
            });
        };
        let shift = 7 * i as u32;
        let payload = u64::from(b & 0x7f);
        if i == max_bytes - 1 {
            // The last byte: no continuation, and no bits beyond the value's width.
            let room = value_bits - shift;
            if b & 0x80 != 0 || payload >> room != 0 {
                return Err(FormatError::BadVarint(start as u64));
            }
        }
        result |= payload << shift;
        if b & 0x80 == 0 {
            *pos = at + 1;
            return Ok(result);
        }
    }
    // Unreachable: the last iteration either returns a value or an error.
    Err(FormatError::BadVarint(start as u64))
}

/// Reads Kafka's unsigned varint (no zigzag; at most 5 bytes, 32 bits) at
/// `*pos`, advancing it. Used by flexible-version schemas.
pub(crate) fn get_unsigned_varint(buf: &[u8], pos: &mut usize) -> Result<u32, FormatError> {
    // At most 32 bits, so the cast is lossless.
    get_unsigned(buf, pos, 5, 32).map(|v| v as u32)
}

/// Reads an unsigned varint of one or two bytes at `*pos`, advancing it;
/// `None` (and `*pos` unchanged) for anything longer or cut short.
#[inline(always)]
fn get_short(buf: &[u8], pos: &mut usize) -> Option<u32> {
    let b0 = *buf.get(*pos)?;
    if b0 < 0x80 {
        *pos += 1;
        return Some(u32::from(b0));
    }
    let b1 = *buf.get(*pos + 1)?;
    if b1 < 0x80 {
        *pos += 2;
        return Some(u32::from(b0 & 0x7f) | u32::from(b1) << 7);
    }
    None
}

/// Reads a zigzag varint (i32) at `*pos`, advancing it.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Result<i32, FormatError> {
    // Fast paths: one byte (lengths and deltas below 64) and two bytes
    // (below 8192: a 100-byte value's length, offset deltas in big batches).
    // Fourteen bits always fit, so neither needs the overlong checks.
    if let Some(u) = get_short(buf, pos) {
        return Ok(unzigzag32(u));
    }
    let u = get_unsigned(buf, pos, MAX_VARINT_BYTES, 32)?;
    // get_unsigned rejected any bit above bit 31.
    Ok(unzigzag32(u as u32))
}

/// Reads a zigzag varlong (i64) at `*pos`, advancing it.
#[inline]
pub(crate) fn get_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, FormatError> {
    if let Some(u) = get_short(buf, pos) {
        return Ok(unzigzag64(u64::from(u)));
    }
    Ok(unzigzag64(get_unsigned(buf, pos, MAX_VARLONG_BYTES, 64)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut b = vec![0xff; MAX_VARINT_BYTES];
        let n = put_varint(&mut b, 0, v);
        assert_eq!(n, varint_size(v));
        b.truncate(n);
        b
    }

    fn enc64(v: i64) -> Vec<u8> {
        let mut b = vec![0xff; MAX_VARLONG_BYTES];
        let n = put_varlong(&mut b, 0, v);
        assert_eq!(n, varlong_size(v));
        b.truncate(n);
        b
    }

    #[test]
    fn varint_known_encodings() {
        // Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 63 -> 126, -64 -> 127, 64 -> 128.
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(-2), [0x03]);
        assert_eq!(enc32(63), [0x7e]);
        assert_eq!(enc32(-64), [0x7f]);
        assert_eq!(enc32(64), [0x80, 0x01]);
        assert_eq!(enc32(300), [0xd8, 0x04]);
        // i32::MAX -> 0xffff_fffe, i32::MIN -> 0xffff_ffff: five bytes, last 0x0f.
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            enc64(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            enc64(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(enc64(-1), [0x01]);
    }

    #[test]
    fn varint_boundaries_round_trip() {
        for v in [
            0,
            -1,
            1,
            63,
            -64,
            64,
            -65,
            8191,
            -8192,
            8192,
            i32::MAX,
            i32::MIN,
        ] {
            let b = enc32(v);
            assert_eq!(b.len(), varint_size(v), "size of {v}");
            let mut pos = 0;
            assert_eq!(get_varint(&b, &mut pos), Ok(v));
            assert_eq!(pos, b.len());
        }
        for v in [
            0,
            -1,
            1,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let b = enc64(v);
            assert_eq!(b.len(), varlong_size(v), "size of {v}");
            let mut pos = 0;
            assert_eq!(get_varlong(&b, &mut pos), Ok(v));
            assert_eq!(pos, b.len());
        }
        assert_eq!(varint_size(i32::MIN), 5);
        for bits in 1..=64u32 {
            assert_eq!(groups_of_7(bits), bits.div_ceil(7) as usize, "{bits} bits");
        }
        assert_eq!(varlong_size(i64::MIN), 10);
    }

    #[test]
    fn varint_malformed() {
        // Empty and cut-short inputs are truncated, not misread.
        let mut pos = 0;
        assert!(matches!(
            get_varint(&[], &mut pos),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            get_varint(&[0x80, 0x80], &mut pos),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            get_varlong(&[0xff; 9], &mut pos),
            Err(FormatError::Truncated { .. })
        ));
        // Six bytes for an i32, eleven for an i64: overlong.
        assert_eq!(
            get_varint(&[0x80; 6], &mut pos),
            Err(FormatError::BadVarint(0))
        );
        assert_eq!(
            get_varlong(&[0x80; 11], &mut pos),
            Err(FormatError::BadVarint(0))
        );
        // Five bytes whose last carries bits beyond 32: overlong.
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos),
            Err(FormatError::BadVarint(0))
        );
        // Ten bytes whose last carries bits beyond 64.
        let mut long = [0xffu8; 10];
        long[9] = 0x02;
        assert_eq!(get_varlong(&long, &mut pos), Err(FormatError::BadVarint(0)));
        // The error names the varint's start.
        let mut pos = 2;
        assert_eq!(
            get_varint(&[0, 0, 0x80, 0x80, 0x80, 0x80, 0x80], &mut pos),
            Err(FormatError::BadVarint(2))
        );
        assert_eq!(pos, 2, "a failed read does not advance");
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in any::<i32>()) {
            let b = enc32(v);
            prop_assert_eq!(b.len(), varint_size(v));
            let mut pos = 0;
            prop_assert_eq!(get_varint(&b, &mut pos), Ok(v));
            prop_assert_eq!(pos, b.len());
        }

        #[test]
        fn varlong_round_trip(v in any::<i64>()) {
            let b = enc64(v);
            prop_assert_eq!(b.len(), varlong_size(v));
            let mut pos = 0;
            prop_assert_eq!(get_varlong(&b, &mut pos), Ok(v));
            prop_assert_eq!(pos, b.len());
        }

        #[test]
        fn varint_arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut pos = 0;
            let _ = get_varint(&b, &mut pos);
            let mut pos = 0;
            let _ = get_varlong(&b, &mut pos);
        }
    }
}
