//! A serde `Deserializer` wrapper that keeps a corrupt payload from asking for a giant allocation.
//!
//! bincode decodes an owned `String` or byte buffer by allocating the length its prefix claims and
//! only then reading; a corrupt prefix, or a value written by another version of the type, can claim
//! exabytes and abort the process. bincode's size limit prevents that, but it is checked on every
//! element and doubled the decode time of a 1 KiB value. This wrapper removes the danger where it
//! arises instead: owned strings and byte buffers are read as borrowed slices (which fail when the
//! input is shorter than the prefix claims, before anything is allocated) and handed to the visitor,
//! which copies exactly what was there. Sequence and map length hints are capped by the payload size
//! for visitors that preallocate from them. Everything else is forwarded unchanged.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// Decodes with `de`, guarding every nested value. `cap` bounds length hints: no container in the
/// payload can hold more elements than the payload has bytes (save zero-sized ones, which cost
/// nothing to preallocate).
pub(crate) struct Guarded<D> {
    inner: D,
    cap: usize,
}

impl<D> Guarded<D> {
    pub(crate) fn new(inner: D, cap: usize) -> Self {
        Guarded { inner, cap }
    }
}

/// A seed that deserializes `T` through the guard; the entry point for `seed_decode_from_slice`.
pub(crate) struct GuardedSeed<T> {
    cap: usize,
    marker: std::marker::PhantomData<T>,
}

impl<T> GuardedSeed<T> {
    pub(crate) fn new(cap: usize) -> Self {
        GuardedSeed {
            cap,
            marker: std::marker::PhantomData,
        }
    }
}

impl<'de, T: serde::Deserialize<'de>> DeserializeSeed<'de> for GuardedSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T, D::Error> {
        T::deserialize(Guarded::new(de, self.cap))
    }
}

struct GuardedVisitor<V> {
    inner: V,
    cap: usize,
}

struct Seed<S> {
    inner: S,
    cap: usize,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Guarded::new(de, self.cap))
    }
}

/// Forwards each listed `deserialize_*` call (with its extra arguments, if any) to the inner
/// deserializer, wrapping the visitor.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
            let cap = self.cap;
            self.inner.$method($($arg,)* GuardedVisitor { inner: visitor, cap })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guarded<D> {
    type Error = D::Error;

    forward!(
        deserialize_any(),
        deserialize_bool(),
        deserialize_i8(),
        deserialize_i16(),
        deserialize_i32(),
        deserialize_i64(),
        deserialize_i128(),
        deserialize_u8(),
        deserialize_u16(),
        deserialize_u32(),
        deserialize_u64(),
        deserialize_u128(),
        deserialize_f32(),
        deserialize_f64(),
        deserialize_char(),
        deserialize_str(),
        deserialize_bytes(),
        deserialize_option(),
        deserialize_unit(),
        deserialize_seq(),
        deserialize_map(),
        deserialize_identifier(),
        deserialize_ignored_any(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
    );

    // The two calls that allocate by a claimed length become their borrowed forms.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: serde::de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardedVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Guarded::new(de, self.cap))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Guarded::new(de, self.cap))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(Access {
            inner: seq,
            cap: self.cap,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Access {
            inner: map,
            cap: self.cap,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Access {
            inner: data,
            cap: self.cap,
        })
    }
}

/// Wraps the sequence, map, enum and variant accessors so the values inside are guarded too.
struct Access<A> {
    inner: A,
    cap: usize,
}

impl<A> Access<A> {
    fn seed<S>(&self, inner: S) -> Seed<S> {
        Seed {
            inner,
            cap: self.cap,
        }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Access<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(self.cap))
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Access<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(self.cap))
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Access<A> {
    type Error = A::Error;
    type Variant = Access<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let cap = self.cap;
        let (value, variant) = self.inner.variant_seed(Seed { inner: seed, cap })?;
        Ok((
            value,
            Access {
                inner: variant,
                cap,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Access<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let cap = self.cap;
        self.inner.newtype_variant_seed(Seed { inner: seed, cap })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let cap = self.cap;
        self.inner.tuple_variant(
            len,
            GuardedVisitor {
                inner: visitor,
                cap,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let cap = self.cap;
        self.inner.struct_variant(
            fields,
            GuardedVisitor {
                inner: visitor,
                cap,
            },
        )
    }
}
