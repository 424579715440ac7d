// Modules: a tree of layers that own parameters (trainable tensors) and buffers (persistent state
// such as BatchNorm running statistics), named with PyTorch's `state_dict` dotted convention
// (`encoder.stages.0.conv.weight`, `encoder.stages.0.bn.running_mean`).
//
// Naming is explicit, not reflected: each module lists its direct members, with their PyTorch
// names, in `members`. The walk below prefixes child names, so a module never spells out its
// children's contents. Tensors are reference types that optimizers and checkpoints update in place.
import GKNetTensorCore

/// One direct member of a module, with the name it has in a PyTorch `state_dict`.
public enum ModuleMember {
    /// A trainable tensor (`nn.Parameter`).
    case parameter(String, Tensor)
    /// A persistent tensor that is not trained (`register_buffer`). `integer` buffers (PyTorch's
    /// int64 `num_batches_tracked`) are stored as I64 in checkpoints.
    case buffer(String, Tensor, integer: Bool = false)
    /// A child module; its entries are named `name.<entry>`.
    case child(String, any Module)
    /// A list of child modules (`nn.ModuleList`); entries are named `name.<index>.<entry>`.
    case children(String, [any Module])
}

/// A node of the model tree.
///
/// Conforming types declare their direct contents and keep a training flag:
/// ```swift
/// final class Block: Module {
///     let conv: Conv2d, norm: BatchNorm2d
///     var isTraining = true
///     var members: [ModuleMember] { [.child("conv", conv), .child("bn", norm)] }
/// }
/// ```
/// Everything else (names, counts, mode switches, freezing) comes from the extension.
public protocol Module: AnyObject {
    /// Direct parameters, buffers and children, in declaration order (parameters first, as PyTorch).
    var members: [ModuleMember] { get }
    /// Training (`true`, the default) or evaluation mode; set it for a whole tree with `train(_:)`.
    var isTraining: Bool { get set }
}

/// One tensor of a module's state: a parameter or a buffer, with its full dotted name.
public struct StateEntry {
    public var name: String
    public var tensor: Tensor
    public var isParameter: Bool
    /// Stored as I64 in checkpoints.
    public var isInteger: Bool
}

extension Module {
    /// Every module of the tree with its dotted path, this one first as `""` (pre-order, like
    /// PyTorch `named_modules`).
    public func namedModules() -> [(String, any Module)] {
        var result: [(String, any Module)] = [("", self)]
        for member in members {
            switch member {
            case .child(let name, let child):
                result += child.namedModules().map { (join(name, $0.0), $0.1) }
            case .children(let name, let list):
                for (index, child) in list.enumerated() {
                    result += child.namedModules().map { (join("\(name).\(index)", $0.0), $0.1) }
                }
            case .parameter, .buffer:
                break
            }
        }
        return result
    }

    /// Every parameter and buffer with its `state_dict` name, module by module (own tensors first,
    /// then children), exactly the keys of PyTorch's `state_dict()`.
    public func stateEntries() -> [StateEntry] {
        var entries: [StateEntry] = []
        for (path, module) in namedModules() {
            for member in module.members {
                switch member {
                case .parameter(let name, let tensor):
                    entries.append(
                        StateEntry(name: join(path, name), tensor: tensor, isParameter: true, isInteger: false))
                case .buffer(let name, let tensor, let integer):
                    entries.append(
                        StateEntry(name: join(path, name), tensor: tensor, isParameter: false, isInteger: integer))
                case .child, .children:
                    break
                }
            }
        }
        return entries
    }

    /// Parameters with dotted names; a tensor shared by two modules appears once (first name),
    /// like PyTorch `named_parameters()`, so an optimizer never steps it twice.
    public func namedParameters() -> [(String, Tensor)] {
        var seen = Set<ObjectIdentifier>()
        return stateEntries().compactMap { entry in
            guard entry.isParameter, seen.insert(ObjectIdentifier(entry.tensor)).inserted else { return nil }
            return (entry.name, entry.tensor)
        }
    }

    /// Buffers with dotted names (`bn.running_mean`, `bn.running_var`, `bn.num_batches_tracked`).
    public func namedBuffers() -> [(String, Tensor)] {
        stateEntries().filter { !$0.isParameter }.map { ($0.name, $0.tensor) }
    }

    /// The parameters in `namedParameters()` order.
    public func parameters() -> [Tensor] { namedParameters().map { $0.1 } }

    /// Number of parameter elements (shared tensors counted once).
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Number of parameter elements that currently train (`requiresGrad`).
    public var trainableParameterCount: Int {
        parameters().filter(\.requiresGrad).reduce(0) { $0 + $1.count }
    }

    /// Sets training mode on this module and every descendant (PyTorch `module.train(mode)`).
    public func train(_ mode: Bool = true) {
        for (_, module) in namedModules() { module.isTraining = mode }
    }

    /// Sets evaluation mode on the whole tree (PyTorch `module.eval()`).
    public func eval() { train(false) }

    /// Stops (or restarts) gradient flow into the parameters whose name starts with `prefix`
    /// (every parameter when `prefix` is empty). Frozen parameters get no gradient, so optimizers
    /// skip them. `freeze(prefix: "encoder.")` freezes a sub-tree.
    public func freeze(prefix: String = "", _ frozen: Bool = true) {
        for (name, tensor) in namedParameters() where name.hasPrefix(prefix) {
            tensor.requiresGrad = !frozen
            if frozen { tensor.grad = nil }
        }
    }

    /// Makes every parameter (under `prefix`) trainable again.
    public func unfreeze(prefix: String = "") { freeze(prefix: prefix, false) }

    /// Clears every parameter's gradient (PyTorch `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        for tensor in parameters() { tensor.grad = nil }
    }
}

/// `a.b`, or just the non-empty one.
private func join(_ prefix: String, _ name: String) -> String {
    if prefix.isEmpty { return name }
    if name.isEmpty { return prefix }
    return prefix + "." + name
}

/// A module that maps one tensor to one tensor, so it can sit in a `Sequential`.
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}
