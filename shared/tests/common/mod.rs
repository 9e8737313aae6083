//! What the property tests share: cutting a byte stream where proptest
//! says, as TCP may deliver it.

/// `stream` cut into consecutive pieces of the lengths in `cuts` (cut
/// short at the end of the stream), then whatever is left.
pub fn pieces<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut start = 0;
    let mut pieces = Vec::new();
    for &cut in cuts {
        let end = (start + cut).min(stream.len());
        pieces.push(&stream[start..end]);
        start = end;
    }
    pieces.push(&stream[start..]);
    pieces
}
