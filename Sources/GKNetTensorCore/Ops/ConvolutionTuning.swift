// Measured backend choice for training convolutions: for every 3x3 convolution our Winograd path
// supports, the first training step that meets its geometry times one forward and backward pass on
// each of the two backends (Winograd, oneDNN) and keeps the faster one for the rest of the process.
// Which is faster depends on the processor (docs/benchmarks.md "Measured, not assumed: the backend
// of each training convolution"): a fixed rule measured on one machine is wrong on the next.
// Inference keeps the fixed rule (`WinogradPolicy`): a one-shot harmonization would spend more
// time measuring than it saves. A run directory keeps the choices (`ConvolutionTuning.Plan`) so
// that a resumed run makes the same ones and continues bit for bit.
import Foundation

/// The process-wide table of measured backends for training convolutions.
public final class ConvolutionTuning: @unchecked Sendable {
    public static let shared = ConvolutionTuning()
    /// The table `conv2d` uses: `shared`, or another per task (tests).
    @TaskLocal public static var current: ConvolutionTuning = .shared

    /// What one choice is about: the geometry and which gradients the backward pass computes.
    public struct Key: Hashable, Codable, Sendable, CustomStringConvertible {
        public var batch, inputChannels, inputHeight, inputWidth, outputChannels: Int
        public var kernelSize, stride, padding, dilation, groups: Int
        public var inputGradient, weightGradient, bias: Bool

        public init(_ g: ConvolutionGeometry, inputGradient: Bool, weightGradient: Bool, bias: Bool) {
            (batch, inputChannels, inputHeight, inputWidth) = (g.batch, g.inputChannels, g.inputHeight, g.inputWidth)
            (outputChannels, kernelSize, stride, padding) = (g.outputChannels, g.kernelSize, g.stride, g.padding)
            (dilation, groups) = (g.dilation, g.groups)
            (self.inputGradient, self.weightGradient, self.bias) = (inputGradient, weightGradient, bias)
        }

        public var geometry: ConvolutionGeometry {
            ConvolutionGeometry(
                batch: batch, inputChannels: inputChannels, inputHeight: inputHeight, inputWidth: inputWidth,
                outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                dilation: dilation, groups: groups)
        }

        public var description: String {
            "\(kernelSize)x\(kernelSize) \(inputChannels)->\(outputChannels) @\(inputHeight)x\(inputWidth) "
                + "batch \(batch)"
                + (inputGradient ? " dx" : "") + (weightGradient ? " dw" : "") + (bias ? " bias" : "")
        }
    }

    /// The two candidates.
    public enum Choice: String, Codable, Sendable {
        case winograd
        case oneDNN = "onednn"

        var backend: ConvolutionBackend { self == .winograd ? .winograd : .oneDNN(blockedLayout: true) }
    }

    /// One measured choice, with the times that decided it (seconds of one forward + backward pass,
    /// the fastest of `ConvolutionTuning.repetitions`).
    public struct Entry: Codable, Sendable, Equatable {
        public var key: Key
        public var choice: Choice
        public var winogradSeconds: Double?
        public var oneDNNSeconds: Double?

        public init(key: Key, choice: Choice, winogradSeconds: Double? = nil, oneDNNSeconds: Double? = nil) {
            (self.key, self.choice, self.winogradSeconds, self.oneDNNSeconds) = (
                key, choice, winogradSeconds, oneDNNSeconds
            )
        }
    }

    /// Every choice of a process, as a run directory keeps it (`convolution-plan.json`).
    public struct Plan: Codable, Sendable, Equatable {
        public var entries: [Entry]
        public init(entries: [Entry] = []) { self.entries = entries }
    }

    /// Timed passes per backend (after one untimed pass that builds primitives and caches).
    public static let repetitions = 3

    private let lock = NSLock()
    private var enabled = false
    private var entries: [Key: Entry] = [:]
    private var order: [Key] = []
    private var observer: (@Sendable (Entry) -> Void)?

    /// A table of its own (tests; the process uses `shared`).
    public init(measuring: Bool = false) { enabled = measuring }

    /// Whether training convolutions are measured: off until an executable turns it on
    /// (`RuntimeSettings.apply()`, `GKNET_CONV_TUNING`), so that library users and the tests get the
    /// fixed rule unless they ask. Choices already made (or adopted) are used either way.
    public var isEnabled: Bool {
        get { lock.withLock { enabled } }
        set { lock.withLock { enabled = newValue } }
    }

    /// The choices made so far, in the order they were made.
    public var plan: Plan { lock.withLock { Plan(entries: order.compactMap { entries[$0] }) } }

    /// Makes `plan`'s choices this process's (a resumed run: the run's earlier choices win over
    /// new measurements); entries for keys already chosen replace them.
    public func adopt(_ plan: Plan) {
        lock.withLock {
            for entry in plan.entries {
                if entries[entry.key] == nil { order.append(entry.key) }
                entries[entry.key] = entry
            }
        }
    }

    /// Called with every new measured choice, after it is in the table (a run directory writes its
    /// plan file); nil stops it.
    public func observeNewChoices(_ body: (@Sendable (Entry) -> Void)?) { lock.withLock { observer = body } }

    /// The backend for a training convolution of `geometry`, or nil to keep the fixed rule (not a
    /// Winograd-eligible geometry, oneDNN missing, or measuring off and nothing chosen yet).
    func backend(for geometry: ConvolutionGeometry, inputGradient: Bool, weightGradient: Bool, bias: Bool)
        -> ConvolutionBackend?
    {
        guard winogradSupports(geometry), ConvolutionBackend.isOneDNNAvailable else { return nil }
        let key = Key(geometry, inputGradient: inputGradient, weightGradient: weightGradient, bias: bias)
        let (choice, newEntry, observer): (Choice?, Entry?, (@Sendable (Entry) -> Void)?) = lock.withLock {
            if let entry = entries[key] { return (entry.choice, nil, nil) }
            guard enabled else { return (nil, nil, nil) }
            // Measured under the lock: a second replica thread meeting the same geometry waits for
            // this choice instead of measuring at the same time on the other core.
            let entry = Self.measure(key)
            entries[key] = entry
            order.append(key)
            return (entry.choice, entry, self.observer)
        }
        // Outside the lock, so that the observer may read `plan`.
        if let newEntry { observer?(newEntry) }
        return choice?.backend
    }

    /// Times one forward and backward pass of `key` on each backend and picks the faster (Winograd
    /// on a tie). The weights change between passes, as in training, so that Winograd's cache of
    /// transformed weights misses as it does there.
    static func measure(_ key: Key) -> Entry {
        let g = key.geometry
        let input = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.inputCount)
        let weight = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.weightCount)
        let bias = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.outputChannels)
        let output = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.outputCount)
        let dOutput = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.outputCount)
        let dInput = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.inputCount)
        let dWeight = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.weightCount)
        let dBias = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.outputChannels)
        defer {
            for buffer in [input, weight, bias, output, dOutput, dInput, dWeight, dBias] { buffer.deallocate() }
        }
        for (index, buffer) in [input, weight, bias, dOutput].enumerated() {
            for i in buffer.indices { buffer[i] = Float((i &* 7 &+ index) % 17) / 17 - 0.5 }
        }
        var pass = 0
        func run(_ backend: ConvolutionBackend) -> Double {
            pass += 1
            weight[0] = Float(pass) * 1e-3
            let start = DispatchTime.now().uptimeNanoseconds
            convolutionForward(
                output: output.baseAddress!, input: input.baseAddress!, weight: weight.baseAddress!,
                bias: key.bias ? bias.baseAddress : nil, geometry: g, training: true, backend: backend)
            convolutionBackward(
                dInput: key.inputGradient ? dInput.baseAddress : nil,
                dWeight: key.weightGradient ? dWeight.baseAddress : nil, dBias: key.bias ? dBias.baseAddress : nil,
                dOutput: dOutput.baseAddress!, input: input.baseAddress!, weight: weight.baseAddress!, geometry: g,
                accumulate: false, backend: backend)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let candidates: [Choice] = [.winograd, .oneDNN]
        for choice in candidates { _ = run(choice.backend) }
        var best = [Choice: Double]()
        // Interleaved, so that a burst of load elsewhere does not fall on one backend only.
        for _ in 0..<repetitions {
            for choice in candidates { best[choice] = min(best[choice] ?? .infinity, run(choice.backend)) }
        }
        let winograd = best[.winograd]!, oneDNN = best[.oneDNN]!
        return Entry(
            key: key, choice: oneDNN < winograd ? .oneDNN : .winograd, winogradSeconds: winograd,
            oneDNNSeconds: oneDNN)
    }
}
