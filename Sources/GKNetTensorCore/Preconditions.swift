// Argument checks of the public ops. Swift's `precondition` drops its message in optimised
// builds; this one (which shadows it inside TensorCore) keeps it, so a malformed call names the
// shapes in release builds too. Misuse of the API is a programming error, so it still stops the
// process; user input is validated long before it reaches an op.

/// Stops with `message` (kept in every build configuration) when `condition` is false.
@usableFromInline @inline(__always)
func precondition(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = String(),
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
