//! [`ValueCodec`]: the format a value's payload is written in.

/// The serde format a node writes values' payloads in. The envelope around the payload is the same
/// for every codec, and its header names the codec that wrote it, so a node reads an entry written
/// in any codec it has compiled in and treats one written in a codec it lacks as a miss (counted in
/// `tiercache_decode_errors_total`), never as an error.
///
/// [`ValueCodec::Bincode`] is the default and what every release before this setting wrote.
/// `ValueCodec::Postcard`, with the core's `postcard` feature, is a maintained alternative (bincode
/// 2 is no longer maintained, RUSTSEC-2025-0141).
///
/// ```
/// let config = tiercache::Config::default();
/// assert_eq!(config.value_codec, tiercache::ValueCodec::Bincode);
/// # #[cfg(feature = "postcard")]
/// let config = tiercache::Config { value_codec: tiercache::ValueCodec::Postcard, ..config };
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ValueCodec {
    /// bincode 2, serde mode, standard configuration (variable-length integers). The default; the
    /// format of every entry written before codecs could be chosen.
    #[default]
    Bincode,
    /// postcard 1 (variable-length integers too, so payloads are of about the same size). Only with
    /// the core's `postcard` feature.
    #[cfg(feature = "postcard")]
    Postcard,
}

impl ValueCodec {
    /// Every codec this build has: what the tests and fuzz targets go through.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) const BUILT_IN: &'static [ValueCodec] = &[
        ValueCodec::Bincode,
        #[cfg(feature = "postcard")]
        ValueCodec::Postcard,
    ];

    /// The byte naming this codec in an envelope header. Bincode is 0 because that byte was
    /// reserved and written as 0 before codecs could be chosen: every older entry reads as bincode.
    pub(crate) fn tag(self) -> u8 {
        match self {
            ValueCodec::Bincode => 0,
            #[cfg(feature = "postcard")]
            ValueCodec::Postcard => 1,
        }
    }

    /// The codec a header's byte names, when this build has it.
    pub(crate) fn from_tag(tag: u8) -> Option<ValueCodec> {
        match tag {
            0 => Some(ValueCodec::Bincode),
            #[cfg(feature = "postcard")]
            1 => Some(ValueCodec::Postcard),
            _ => None,
        }
    }

    /// The name `TIERCACHE_VALUE_CODEC` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ValueCodec::Bincode => "bincode",
            #[cfg(feature = "postcard")]
            ValueCodec::Postcard => "postcard",
        }
    }

    /// The codec `TIERCACHE_VALUE_CODEC` names, when this build has it.
    pub(crate) fn from_name(name: &str) -> Option<ValueCodec> {
        match name.trim().to_ascii_lowercase().as_str() {
            "bincode" => Some(ValueCodec::Bincode),
            #[cfg(feature = "postcard")]
            "postcard" => Some(ValueCodec::Postcard),
            _ => None,
        }
    }
}
