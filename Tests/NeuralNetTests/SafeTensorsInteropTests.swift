import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Files exchanged with Python's `safetensors` package, both ways.
@Suite struct SafeTensorsInteropTests {
    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    /// (i * 37 mod 101 - 50) / 7 in float32, as in Scripts/fixtures/nn_checkpoint.py.
    static func ramp(_ count: Int) -> [Float] { (0..<count).map { Float(($0 * 37) % 101 - 50) / 7 } }

    @Test func fileWrittenByPythonLoads() throws {
        let file = try Fixtures.load("nn_checkpoint/python_written.safetensors")
        #expect(file.tensors["f32.values"]?.shape == [2, 3, 4] && file.tensors["f32.values"]?.dtype == .f32)
        #expect(bits(try file.tensor("f32.values").data) == bits(Self.ramp(24)))
        for name in ["f16.values", "bf16.values", "f16.special", "bf16.special"] {
            let entry = try #require(file.tensors[name])
            #expect(entry.dtype == (name.hasPrefix("f16") ? .f16 : .bf16))
            #expect(bits(entry.values) == bits(try file.tensor(name + ".as_f32").data), "\(name)")
        }
        #expect(file.tensors["scalar"]?.shape == [] && file.tensors["scalar"]?.values == [3.5])
        #expect(file.tensors["empty"]?.shape == [0, 3] && file.tensors["empty"]?.values == [])
        #expect(
            file.tensors["bn.num_batches_tracked"]?.dtype == .i64
                && file.tensors["bn.num_batches_tracked"]?.values == [12345])
        #expect(file.metadata["gknet.config"] == #"{"name":"python"}"# && file.metadata["gknet.step"] == "7")
    }

    /// The contents Scripts/fixtures/check_swift_safetensors.py expects.
    static func swiftFile() -> SafeTensorsFile {
        let special: [Float] = [
            0, -0.0, 1, -1, 65504, 65520, 1e-8, 0x1p-24, 3 * 0x1p-25, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8,
            1 + 3 * 0x1p-8, 3.38e38, 1e-40, 1e-45, .infinity, -.infinity, 6.1e-5, 1e5, -2.5e-6, .nan,
        ]
        return SafeTensorsFile(
            tensors: [
                "f32.ramp": NamedTensor(shape: [2, 3, 4], values: ramp(24)),
                "f16.ramp": NamedTensor(shape: [5, 7], values: ramp(35), dtype: .f16),
                "bf16.ramp": NamedTensor(shape: [3, 5], values: ramp(15), dtype: .bf16),
                "f32.special": NamedTensor(shape: [special.count], values: special),
                "f16.special": NamedTensor(shape: [special.count], values: special, dtype: .f16),
                "bf16.special": NamedTensor(shape: [special.count], values: special, dtype: .bf16),
                "scalar": NamedTensor(shape: [], values: [3.5]),
                "empty": NamedTensor(shape: [0, 3], values: []),
                "layer.num_batches_tracked": NamedTensor(shape: [], values: [12345], dtype: .i64),
            ], metadata: ["format": "pt", "gknet.config": #"{"name":"swift","width":8}"#, "gknet.step": "42"])
    }

    /// Our writer must still produce the committed file that the Python check script verified.
    /// Regenerate it with `GKNET_WRITE_SWIFT_FIXTURE=1` (see docs/checkpoints.md).
    @Test func fileWrittenBySwiftMatchesTheFilePythonChecked() throws {
        let bytes = try Self.swiftFile().serialized()
        let url = Fixtures.url("nn_checkpoint/swift_written.safetensors")
        if ProcessInfo.processInfo.environment["GKNET_WRITE_SWIFT_FIXTURE"] == "1" {
            try AtomicFile.write(bytes, to: url)
        }
        let committed = try Data(contentsOf: url)
        #expect(bytes == committed, "writer output differs from the committed swift_written.safetensors")
        // And it reads back to the same values (F16/BF16 rounded once).
        let reread = try SafeTensorsFile(bytes: bytes)
        for (name, tensor) in Self.swiftFile().tensors {
            let back = try #require(reread.tensors[name])
            #expect(back.shape == tensor.shape && back.dtype == tensor.dtype)
            let expected: [Float] =
                switch tensor.dtype {
                case .f16: tensor.values.map { Float(halfBits: $0.halfBits) }
                case .bf16: tensor.values.map { Float(bitPattern: UInt32($0.bfloat16Bits) << 16) }
                default: tensor.values
                }
            #expect(bits(back.values) == bits(expected), "\(name)")
        }
        #expect(reread.metadata == Self.swiftFile().metadata)
    }

    /// What Scripts/fixtures/check_swift_safetensors.py checks, without Python (CI has none): Python's
    /// `safetensors` wrote the same tensors and metadata (torch's own F16/BF16 rounding) into
    /// swift_contents_by_python.safetensors; our writer's file must decode to exactly those (names,
    /// dtypes, shapes, bits; any NaN matches any NaN) and the same metadata.
    @Test func fileWrittenBySwiftHoldsWhatPythonWritesForTheSameContents() throws {
        let ours = try SafeTensorsFile(bytes: try Self.swiftFile().serialized())
        let python = try Fixtures.load("nn_checkpoint/swift_contents_by_python.safetensors")
        #expect(Set(ours.tensors.keys) == Set(python.tensors.keys))
        for (name, theirs) in python.tensors {
            let mine = try #require(ours.tensors[name], "\(name) missing")
            #expect(
                mine.dtype == theirs.dtype && mine.shape == theirs.shape,
                "\(name): \(mine.dtype) \(mine.shape) vs \(theirs.dtype) \(theirs.shape)")
            #expect(mine.values.count == theirs.values.count, "\(name)")
            for (index, (a, b)) in zip(mine.values, theirs.values).enumerated()
            where !(a.isNaN && b.isNaN) && a.bitPattern != b.bitPattern {
                Issue.record("\(name)[\(index)]: ours \(a), Python's \(b)")
            }
        }
        #expect(ours.metadata == python.metadata)
    }
}
