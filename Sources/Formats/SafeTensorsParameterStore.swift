import Llama
import TensorCore

/// The weights of safetensors files, read from the memory map tensor by tensor: a source to convert into the
/// store a run trains in (fp32, bf16, INT8) with no full-precision copy of the model on the side. Each read
/// converts one tensor into a workspace the size of the largest and then drops that tensor's mapped pages, so
/// a conversion's peak is the new store plus one tensor. Read-only.
final class SafeTensorsParameterStore: ParameterStore {
    let layout: ParameterLayout
    /// Each parameter's file and tensor, checked against the layout when the store was made.
    private let sources: [(file: SafeTensorsFile, tensor: SafeTensor)]
    private let workspace: AlignedBuffer<Float>

    init(layout: ParameterLayout, sources: [(file: SafeTensorsFile, tensor: SafeTensor)], ledger: MemoryLedger) {
        self.layout = layout
        self.sources = sources
        workspace = AlignedBuffer(
            count: layout.parameters.map(\.count).max() ?? 0, category: .workspace, ledger: ledger)
    }

    func withFloats<R>(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let (file, tensor) = sources[id], w = workspace.slice(0, tensor.count)
        file.read(tensor, into: w.baseAddress!)
        file.release(tensor)
        return try body(UnsafeBufferPointer(w))
    }

    func update<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        preconditionFailure("SafeTensorsParameterStore is read-only: convert it into the store the run trains in")
    }
}
