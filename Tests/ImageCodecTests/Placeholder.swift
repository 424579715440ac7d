import Testing

// Placeholder so a fresh clone has this test target's folder; real tests arrive with their issue.
@Suite struct ImageCodecTestsPlaceholder {}
