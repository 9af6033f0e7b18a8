// A report names the test's own line however deep the allocation: here
// inside serde_json's recursion over a 40-level document, far below the
// 16 frames a traceback keeps.

memassert::install!();

fn nested(levels: usize) -> String {
    let mut text = String::new();
    for _ in 0..levels {
        text.push_str("{\"a\":[");
    }
    text.push_str("\"x\"");
    for _ in 0..levels {
        text.push_str("]}");
    }
    text
}

#[test]
#[memassert::track_alloc(max = "1 KiB")]
#[should_panic(
    expected = "... frames omitted ...\n    tests/deep_stacks.rs:26 in deep_stacks::parses_a_deep_document::{{closure}}"
)]
fn parses_a_deep_document() {
    let text = nested(40);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(value.is_object());
}
