// The training log (log.jsonl): one JSON object per line, a training step or a validation.
import Foundation
import TensorCore

/// The run's log: one JSON object per line, either a training step or a validation.
public struct TrainingHistory: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var step: Int
        public var loss: Float
        public var learningRate: Double
        public var imagesPerSecond: Double
        enum CodingKeys: String, CodingKey {
            case step, loss, learningRate = "lr", imagesPerSecond = "images_per_second"
        }
        /// The loss is written with Swift's shortest round-trip float text, so it reads back bit for bit.
        var jsonLine: String {
            "{\"step\":\(step),\"loss\":\(loss.description),\"lr\":\(learningRate),\"images_per_second\":\(String(format: "%.2f", imagesPerSecond))}"
        }
    }

    public struct Validation: Codable, Sendable, Equatable {
        public var step: Int
        public var mse: Double
        public var fmse: Double
        public var psnr: Double
        public var count: Int
        var jsonLine: String {
            "{\"step\":\(step),\"validation\":{\"mse\":\(mse),\"fmse\":\(fmse),\"psnr\":\(psnr),\"count\":\(count)}}"
        }
    }

    public var entries: [Entry] = []
    public var validations: [Validation] = []

    struct Line: Decodable {
        var step: Int
        var loss: Float?
        var lr: Double?
        var images_per_second: Double?
        var validation: ValidationBody?
        struct ValidationBody: Decodable { var mse: Double; var fmse: Double; var psnr: Double; var count: Int }
    }

    /// Reads a log, keeping what happened up to `step` (lines after a checkpoint are dropped on resume).
    public static func read(from url: URL, upToStep step: Int = .max) throws -> TrainingHistory {
        var history = TrainingHistory()
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return history }
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard let parsed = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else { continue }  // a torn last line after a kill
            guard parsed.step <= step else { continue }
            if let v = parsed.validation {
                history.validations.append(Validation(step: parsed.step, mse: v.mse, fmse: v.fmse, psnr: v.psnr, count: v.count))
            } else if let loss = parsed.loss {
                history.entries.append(Entry(step: parsed.step, loss: loss, learningRate: parsed.lr ?? 0, imagesPerSecond: parsed.images_per_second ?? 0))
            }
        }
        return history
    }

    /// Rewrites the log atomically in step order.
    func write(to url: URL) throws {
        var lines: [(Int, Int, String)] = entries.map { ($0.step, 0, $0.jsonLine) } + validations.map { ($0.step, 1, $0.jsonLine) }
        lines.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        try AtomicFile.write(Data(lines.map { $0.2 + "\n" }.joined().utf8), to: url)
    }
}
