// A progress line on stderr for long commands: rewritten in place on a terminal, one line at most
// every few seconds otherwise (so logs stay readable).
import Foundation

final class ProgressLine {
    let label: String
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastPrint = -Double.infinity

    init(label: String) { self.label = label }

    func update(done: Int, total: Int, elapsed: Double, detail: String = "") {
        let interval = isTerminal ? 0.2 : 5.0
        guard done == total || elapsed - lastPrint >= interval else { return }
        lastPrint = elapsed
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let text =
            String(format: "%@ %d/%d  %.1f s elapsed, ETA %.0f s", label, done, total, elapsed, eta)
            + (detail.isEmpty ? "" : "  " + detail)
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + text + (done == total ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}
