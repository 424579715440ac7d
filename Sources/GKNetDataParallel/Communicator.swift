// The processes of a data-parallel job and the collective operations between them, on Open MPI.
// A process started by `mpirun` joins the job (rank and size from MPI); any other process is a
// job of one, in which every collective is a no-op, so single-machine code paths need no MPI.
// Imports: CMPI only.
import CGKNetMPI
import Foundation

/// The world of a data-parallel job: this process's rank among `size` processes.
///
/// Use `Communicator.world` (created on first use; MPI is initialised then). Collectives must be
/// called by every rank in the same order, by one thread at a time (MPI_THREAD_SERIALIZED). A
/// failed MPI call ends the whole job with a message (`abort`): a half-synchronized job cannot
/// continue.
public final class Communicator: @unchecked Sendable {
    /// This process's index, 0..<size.
    public let rank: Int
    /// The number of processes in the job (1 when not launched by mpirun).
    public let size: Int
    /// Whether MPI was initialised (launched by mpirun).
    public let usesMPI: Bool

    /// The job this process belongs to.
    public static let world = Communicator()

    /// Whether this process was started by an MPI launcher (Open MPI's mpirun/mpiexec or a
    /// PMIx-based launcher such as srun), read from the launcher's environment.
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    private init() {
        guard Self.isLaunchedByMPI else {
            (rank, size, usesMPI) = (0, 1, false)
            return
        }
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, gk_mpi_thread_serialized(), &provided) == gk_mpi_success() else {
            FileHandle.standardError.write(Data("error: MPI_Init_thread failed; cannot join the MPI job\n".utf8))
            exit(1)
        }
        var rank: Int32 = 0
        var size: Int32 = 1
        MPI_Comm_rank(gk_mpi_comm_world(), &rank)
        MPI_Comm_size(gk_mpi_comm_world(), &size)
        (self.rank, self.size, usesMPI) = (Int(rank), Int(size), true)
        if provided < gk_mpi_thread_serialized() {
            abort("this MPI library does not support calls from several threads (MPI_THREAD_SERIALIZED)")
        }
    }

    /// Whether more than one process takes part.
    public var isDistributed: Bool { size > 1 }
    /// Rank 0 writes logs, plots and checkpoints.
    public var isRoot: Bool { rank == 0 }

    /// Sums `values` element-wise over every rank, in place.
    public func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) {
        sumInPlace(values.baseAddress, count: values.count, gk_mpi_float())
    }

    /// Sums `values` element-wise over every rank, in place (double precision: statistics).
    public func sumInPlace(_ values: UnsafeMutableBufferPointer<Double>) {
        sumInPlace(values.baseAddress, count: values.count, gk_mpi_double())
    }

    /// MPI_Allreduce (sum, in place) of `count` values of `datatype` at `base`.
    private func sumInPlace(_ base: UnsafeMutableRawPointer?, count: Int, _ datatype: MPI_Datatype) {
        guard isDistributed, let base, count > 0 else { return }
        check(
            MPI_Allreduce(gk_mpi_in_place(), base, Int32(count), datatype, gk_mpi_sum(), gk_mpi_comm_world()),
            "MPI_Allreduce")
    }

    /// Sums `values` element-wise over every rank, in place.
    public func sumInPlace(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { sumInPlace($0) }
    }

    /// Sums `values` element-wise over every rank, in place.
    public func sumInPlace(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { sumInPlace($0) }
    }

    /// Replaces `values` on every rank by rank `root`'s (the counts must agree).
    public func broadcast(_ values: UnsafeMutableBufferPointer<Float>, root: Int = 0) {
        guard isDistributed, let base = values.baseAddress, !values.isEmpty else { return }
        check(
            MPI_Bcast(base, Int32(values.count), gk_mpi_float(), Int32(root), gk_mpi_comm_world()), "MPI_Bcast")
    }

    /// Rank `root`'s bytes on every rank (any length: the length is broadcast first).
    public func broadcast(_ data: Data, root: Int = 0) -> Data {
        guard isDistributed else { return data }
        var length = Int64(rank == root ? data.count : 0)
        check(MPI_Bcast(&length, 1, gk_mpi_int64(), Int32(root), gk_mpi_comm_world()), "MPI_Bcast")
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length))
        if length > 0 {
            bytes.withUnsafeMutableBufferPointer { buffer in
                check(
                    MPI_Bcast(buffer.baseAddress, Int32(length), gk_mpi_byte(), Int32(root), gk_mpi_comm_world()),
                    "MPI_Bcast")
            }
        }
        return Data(bytes)
    }

    /// Every rank's bytes (any length each), in rank order, on rank `root`; an empty array on the
    /// other ranks. A job of one gets `[data]`.
    public func gather(_ data: Data, root: Int = 0) -> [Data] {
        guard isDistributed else { return [data] }
        var length = Int64(data.count)
        var lengths = [Int64](repeating: 0, count: rank == root ? size : 0)
        lengths.withUnsafeMutableBufferPointer { buffer in
            check(
                MPI_Gather(
                    &length, 1, gk_mpi_int64(), buffer.baseAddress, 1, gk_mpi_int64(), Int32(root),
                    gk_mpi_comm_world()),
                "MPI_Gather")
        }
        var counts = lengths.map { Int32(clamping: $0) }
        var offsets = [Int32](repeating: 0, count: counts.count)
        for index in counts.indices.dropFirst() { offsets[index] = offsets[index - 1] + counts[index - 1] }
        var received = [UInt8](repeating: 0, count: Int(counts.reduce(0, +)))
        var sent = [UInt8](data)
        sent.withUnsafeMutableBufferPointer { sending in
            received.withUnsafeMutableBufferPointer { receiving in
                check(
                    MPI_Gatherv(
                        sending.baseAddress, Int32(sending.count), gk_mpi_byte(), receiving.baseAddress, &counts,
                        &offsets, gk_mpi_byte(), Int32(root), gk_mpi_comm_world()),
                    "MPI_Gatherv")
            }
        }
        guard rank == root else { return [] }
        return counts.indices.map { Data(received[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
    }

    /// Waits until every rank has arrived.
    public func barrier() {
        guard isDistributed else { return }
        check(MPI_Barrier(gk_mpi_comm_world()), "MPI_Barrier")
    }

    /// Ends the whole job: prints `message` and makes mpirun stop every rank with `code`.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("error (rank \(rank) of \(size)): \(message)\n".utf8))
        if usesMPI { MPI_Abort(gk_mpi_comm_world(), code) }
        exit(code)
    }

    /// Leaves the job (call once, at the end of the process's work; collectives fail after it).
    public func finish() {
        guard usesMPI else { return }
        MPI_Finalize()
    }

    private func check(_ status: Int32, _ call: String) {
        if status != gk_mpi_success() { abort("\(call) failed with MPI error \(status)") }
    }
}
