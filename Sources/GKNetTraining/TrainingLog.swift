// The training log (log.jsonl): one JSON object per line, a training step or a validation, both
// read and written through one record type.
import Foundation
import GKNetTensorCore

/// One line of the training log:
///
///     {"step":12,"loss":0.013771854,"lr":0.001,"images_per_second":3.41}
///     {"step":500,"validation":{"mse":41.2,"fmse":380.5,"psnr":33.9,"count":100}}
///
/// A training step sets `loss`, `learningRate` and `imagesPerSecond`; a validation sets
/// `validation`. Older logs without `lr` or `images_per_second` still read (those are nil).
public struct TrainingLogRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var loss: Float?
    public var learningRate: Double?
    public var imagesPerSecond: Double?
    public var validation: ValidationMetrics?

    /// The metrics of a validation (means over its images).
    public struct ValidationMetrics: Codable, Sendable, Equatable {
        public var mse: Double
        public var fmse: Double
        public var psnr: Double
        public var count: Int

        public init(mse: Double, fmse: Double, psnr: Double, count: Int) {
            self.mse = mse
            self.fmse = fmse
            self.psnr = psnr
            self.count = count
        }
    }

    enum CodingKeys: String, CodingKey {
        case step, loss, learningRate = "lr", imagesPerSecond = "images_per_second", validation
    }

    /// A training step's record.
    public static func training(step: Int, loss: Float, learningRate: Double, imagesPerSecond: Double) -> Self {
        Self(step: step, loss: loss, learningRate: learningRate, imagesPerSecond: imagesPerSecond)
    }

    /// A validation's record.
    public static func validation(step: Int, metrics: ValidationMetrics) -> Self {
        Self(step: step, validation: metrics)
    }

    public var isValidation: Bool { validation != nil }

    /// The line as written, keys in `CodingKeys` order. Written by hand rather than by
    /// JSONEncoder so the file stays as it always was: the loss in Swift's shortest round-trip
    /// float text (it reads back bit for bit), images per second with two decimals.
    var jsonLine: String {
        func key(_ key: CodingKeys) -> String { "\"\(key.rawValue)\":" }
        if let v = validation {
            return
                "{\(key(.step))\(step),\(key(.validation)){\"mse\":\(v.mse),\"fmse\":\(v.fmse),\"psnr\":\(v.psnr),"
                + "\"count\":\(v.count)}}"
        }
        let lossText = (loss ?? 0).description
        let rate = String(format: "%.2f", imagesPerSecond ?? 0)
        return
            "{\(key(.step))\(step),\(key(.loss))\(lossText),\(key(.learningRate))\(learningRate ?? 0),"
            + "\(key(.imagesPerSecond))\(rate)}"
    }
}

/// The run's log in memory: its records in file order.
public struct TrainingHistory: Sendable {
    public var records: [TrainingLogRecord] = []

    public init(records: [TrainingLogRecord] = []) { self.records = records }

    /// The training steps' records, in order.
    public var entries: [TrainingLogRecord] { records.filter { $0.loss != nil && !$0.isValidation } }
    /// The validations' records, in order.
    public var validations: [TrainingLogRecord] { records.filter(\.isValidation) }

    /// Reads a log, keeping what happened up to `step` (lines after a checkpoint are dropped on
    /// resume). A line that does not parse (a torn last line after a kill) is skipped.
    public static func read(from url: URL, upToStep step: Int = .max) throws -> TrainingHistory {
        var history = TrainingHistory()
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return history }
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard let record = try? JSONDecoder().decode(TrainingLogRecord.self, from: Data(line.utf8)) else {
                continue
            }
            guard record.step <= step, record.isValidation || record.loss != nil else { continue }
            history.records.append(record)
        }
        return history
    }

    /// Rewrites the log atomically in step order (a step's training line before its validation).
    func write(to url: URL) throws {
        let ordered = records.enumerated().sorted { a, b in
            (a.element.step, a.element.isValidation ? 1 : 0, a.offset) < (
                b.element.step, b.element.isValidation ? 1 : 0, b.offset
            )
        }
        try AtomicFile.write(Data(ordered.map { $0.element.jsonLine + "\n" }.joined().utf8), to: url)
    }
}
