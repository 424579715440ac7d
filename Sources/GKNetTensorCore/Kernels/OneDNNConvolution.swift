// Convolution through oneDNN primitives: forward (training or inference), backward data and
// backward weights (+ bias), each created once per geometry and cached (see OneDNN.swift).
// Callers keep NCHW / OIHW buffers; operands reorder to and from the layouts the primitives pick.
#if canImport(CGKNetDNNL)
import CGKNetDNNL

/// Which convolution primitive a plan runs.
enum ConvolutionPrimitiveKind: Hashable {
    case forwardTraining, forwardInference, backwardData, backwardWeights
}

/// The cache key of a convolution plan.
struct ConvolutionPlanKey: Hashable {
    var geometry: ConvolutionGeometry
    var kind: ConvolutionPrimitiveKind
    var hasBias: Bool
    var blockedLayout: Bool
}

/// A created primitive and its operands by `DNNL_ARG_*`.
final class ConvolutionPlan {
    let primitive: dnnl_primitive_t
    let operands: [Int32: OneDNNOperand]
    /// oneDNN's implementation name (e.g. "brgconv:avx512_core"), for benchmarks and debugging.
    let implementation: String

    init(primitive: dnnl_primitive_t, operands: [Int32: OneDNNOperand], implementation: String) {
        self.primitive = primitive
        self.operands = operands
        self.implementation = implementation
    }

    deinit { dnnl_primitive_destroy(primitive) }

    /// Creates the plan for `key`, or nil when oneDNN has no implementation for it.
    /// Long: the C API needs the op descriptor, the primitive descriptor, the layouts it chose and a
    /// memory object per operand made in one sequence, each step checked; split up, the half-built
    /// handles would have to travel between functions and be released on every failure path.
    static func make(_ key: ConvolutionPlanKey, context: OneDNN) -> ConvolutionPlan? {
        let g = key.geometry
        let layout = key.blockedLayout ? dnnl_format_tag_any : dnnl_nchw
        let sourceDims = [g.batch, g.inputChannels, g.inputHeight, g.inputWidth]
        let destinationDims = [g.batch, g.outputChannels, g.outputHeight, g.outputWidth]
        let weightDims =
            g.groups == 1
            ? [g.outputChannels, g.inputChannels, g.kernelSize, g.kernelSize]
            : [g.groups, g.outputChannelsPerGroup, g.inputChannelsPerGroup, g.kernelSize, g.kernelSize]
        var source = dnnlMemoryDescriptor(sourceDims, layout)
        var destination = dnnlMemoryDescriptor(destinationDims, layout)
        var weights = dnnlMemoryDescriptor(weightDims, dnnl_format_tag_any)
        var bias = dnnlMemoryDescriptor([g.outputChannels], dnnl_x)
        let user = (
            source: dnnlMemoryDescriptor(sourceDims, dnnl_nchw),
            destination: dnnlMemoryDescriptor(destinationDims, dnnl_nchw),
            weights: dnnlMemoryDescriptor(weightDims, g.groups == 1 ? dnnl_oihw : dnnl_goihw), bias: bias
        )
        let strides: [Int64] = [Int64(g.stride), Int64(g.stride)]
        let dilates: [Int64] = [Int64(g.dilation - 1), Int64(g.dilation - 1)]  // oneDNN counts gaps
        let paddingBefore: [Int64] = [Int64(g.padding), Int64(g.padding)]
        let paddingAfter: [Int64] = [Int64(g.paddingBottom), Int64(g.paddingRight)]

        func forwardDescriptor(_ propagation: dnnl_prop_kind_t, withBias: Bool) -> dnnl_convolution_desc_t? {
            var descriptor = dnnl_convolution_desc_t()
            let status = withUnsafePointer(to: &bias) { biasPointer in
                dnnl_dilated_convolution_forward_desc_init(
                    &descriptor, propagation, dnnl_convolution_direct, &source, &weights, withBias ? biasPointer : nil,
                    &destination, strides, dilates, paddingBefore, paddingAfter)
            }
            return status == dnnl_success ? descriptor : nil
        }
        func primitiveDescriptor(_ descriptor: inout dnnl_convolution_desc_t, hint: dnnl_primitive_desc_t?)
            -> dnnl_primitive_desc_t?
        {
            withUnsafePointer(to: &descriptor) { context.makePrimitiveDescriptor(UnsafeRawPointer($0), hint: hint) }
        }

        // The primitive descriptor, and (argument, user layout, query, is output) for each operand.
        var descriptor: dnnl_primitive_desc_t?
        var arguments: [(Int32, dnnl_memory_desc_t, dnnl_query_t, Int32, Bool)] = []
        switch key.kind {
        case .forwardTraining, .forwardInference:
            let propagation = key.kind == .forwardTraining ? dnnl_forward_training : dnnl_forward_inference
            guard var op = forwardDescriptor(propagation, withBias: key.hasBias) else { return nil }
            descriptor = primitiveDescriptor(&op, hint: nil)
            arguments = [
                (DNNL_ARG_SRC, user.source, dnnl_query_src_md, 0, false),
                (DNNL_ARG_WEIGHTS, user.weights, dnnl_query_weights_md, 0, false),
                (DNNL_ARG_DST, user.destination, dnnl_query_dst_md, 0, true),
            ]
            if key.hasBias { arguments.append((DNNL_ARG_BIAS, user.bias, dnnl_query_weights_md, 1, false)) }
        case .backwardData, .backwardWeights:
            // Backward primitives need the forward-training primitive descriptor as a hint.
            guard var forward = forwardDescriptor(dnnl_forward_training, withBias: key.hasBias),
                let hint = primitiveDescriptor(&forward, hint: nil)
            else { return nil }
            defer { dnnl_primitive_desc_destroy(hint) }
            var op = dnnl_convolution_desc_t()
            if key.kind == .backwardData {
                guard
                    dnnl_dilated_convolution_backward_data_desc_init(
                        &op, dnnl_convolution_direct, &source, &weights, &destination, strides, dilates, paddingBefore,
                        paddingAfter
                    ) == dnnl_success
                else { return nil }
                arguments = [
                    (DNNL_ARG_DIFF_DST, user.destination, dnnl_query_diff_dst_md, 0, false),
                    (DNNL_ARG_WEIGHTS, user.weights, dnnl_query_weights_md, 0, false),
                    (DNNL_ARG_DIFF_SRC, user.source, dnnl_query_diff_src_md, 0, true),
                ]
            } else {
                let status = withUnsafePointer(to: &bias) { biasPointer in
                    dnnl_dilated_convolution_backward_weights_desc_init(
                        &op, dnnl_convolution_direct, &source, &weights, key.hasBias ? biasPointer : nil, &destination,
                        strides, dilates, paddingBefore, paddingAfter)
                }
                guard status == dnnl_success else { return nil }
                arguments = [
                    (DNNL_ARG_SRC, user.source, dnnl_query_src_md, 0, false),
                    (DNNL_ARG_DIFF_DST, user.destination, dnnl_query_diff_dst_md, 0, false),
                    (DNNL_ARG_DIFF_WEIGHTS, user.weights, dnnl_query_diff_weights_md, 0, true),
                ]
                if key.hasBias {
                    arguments.append((DNNL_ARG_DIFF_BIAS, user.bias, dnnl_query_diff_weights_md, 1, true))
                }
            }
            descriptor = primitiveDescriptor(&op, hint: hint)
        }
        guard let descriptor else { return nil }
        defer { dnnl_primitive_desc_destroy(descriptor) }

        var operands: [Int32: OneDNNOperand] = [:]
        for (argument, userDescriptor, query, index, isOutput) in arguments {
            guard let chosen = dnnl_primitive_desc_query_md(descriptor, query, index),
                let operand = OneDNNOperand(
                    context: context, user: userDescriptor, inner: chosen.pointee, isOutput: isOutput)
            else { return nil }
            operands[argument] = operand
        }
        var name: UnsafePointer<CChar>?
        _ = dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name)
        guard let primitive = context.makePrimitive(descriptor) else { return nil }
        return ConvolutionPlan(
            primitive: primitive, operands: operands, implementation: name.map { String(cString: $0) } ?? "?")
    }
}

extension OneDNN {
    func convolutionPlan(_ key: ConvolutionPlanKey) -> ConvolutionPlan? {
        plan(key) { ConvolutionPlan.make(key, context: self) }
    }

    /// oneDNN forward convolution (see `convolutionForward`); false if no primitive exists.
    func convolutionForward(
        output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, geometry: ConvolutionGeometry, accumulate: Bool, training: Bool,
        blockedLayout: Bool
    ) -> Bool {
        withLock {
            let key = ConvolutionPlanKey(
                geometry: geometry, kind: training ? .forwardTraining : .forwardInference, hasBias: bias != nil,
                blockedLayout: blockedLayout)
            guard let plan = convolutionPlan(key), let dst = plan.operands[DNNL_ARG_DST] else { return false }
            var arguments = [
                (DNNL_ARG_SRC, plan.operands[DNNL_ARG_SRC]!.bindInput(input, context: self, role: .source)),
                (DNNL_ARG_WEIGHTS, plan.operands[DNNL_ARG_WEIGHTS]!.bindInput(weight, context: self, role: .weights)),
                (DNNL_ARG_DST, dst.bindOutput(output, context: self, role: .destination, accumulate: accumulate)),
            ]
            if let bias {
                arguments.append(
                    (DNNL_ARG_BIAS, plan.operands[DNNL_ARG_BIAS]!.bindInput(bias, context: self, role: .bias)))
            }
            execute(plan.primitive, arguments, "convolution forward \(geometry)")
            dst.finishOutput(output, count: geometry.outputCount, context: self, accumulate: accumulate)
            return true
        }
    }

    /// oneDNN backward convolution (see `convolutionBackward`); false if no primitive exists.
    func convolutionBackward(
        dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
        dBias: UnsafeMutablePointer<Float>?,
        dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>?, weight: UnsafePointer<Float>?,
        geometry: ConvolutionGeometry, accumulate: Bool, blockedLayout: Bool
    ) -> Bool {
        withLock {
            let dataPlan =
                dInput == nil
                ? nil
                : convolutionPlan(
                    ConvolutionPlanKey(
                        geometry: geometry, kind: .backwardData, hasBias: false, blockedLayout: blockedLayout))
            let weightsPlan =
                dWeight == nil
                ? nil
                : convolutionPlan(
                    ConvolutionPlanKey(
                        geometry: geometry, kind: .backwardWeights, hasBias: dBias != nil, blockedLayout: blockedLayout)
                )
            if (dInput != nil && dataPlan == nil) || (dWeight != nil && weightsPlan == nil) { return false }
            // The bias gradient alone (no weight gradient to compute it with) is a plain channel sum.
            if dWeight == nil, let dBias {
                if !accumulate { dBias.update(repeating: 0, count: geometry.outputChannels) }
                accumulateChannelSums(
                    dBias, of: dOutput, batch: geometry.batch, channels: geometry.outputChannels,
                    planeSize: geometry.outputHeight * geometry.outputWidth)
            }

            var reorderedDOutput: (descriptor: OneDNNOperand, memory: dnnl_memory_t)?
            if let dataPlan, let dInput, let weight {
                let dDst = dataPlan.operands[DNNL_ARG_DIFF_DST]!
                let dSrc = dataPlan.operands[DNNL_ARG_DIFF_SRC]!
                let dDstMemory = dDst.bindInput(dOutput, context: self, role: .destination)
                if dDst.needsReorder { reorderedDOutput = (dDst, dDstMemory) }
                let dSrcMemory = dSrc.bindOutput(dInput, context: self, role: .source, accumulate: accumulate)
                execute(
                    dataPlan.primitive,
                    [
                        (DNNL_ARG_DIFF_DST, dDstMemory),
                        (
                            DNNL_ARG_WEIGHTS,
                            dataPlan.operands[DNNL_ARG_WEIGHTS]!.bindInput(weight, context: self, role: .weights)
                        ),
                        (DNNL_ARG_DIFF_SRC, dSrcMemory),
                    ], "convolution backward data \(geometry)")
                dSrc.finishOutput(dInput, count: geometry.inputCount, context: self, accumulate: accumulate)
            }
            if let weightsPlan, let dWeight, let input {
                let dDst = weightsPlan.operands[DNNL_ARG_DIFF_DST]!
                let dW = weightsPlan.operands[DNNL_ARG_DIFF_WEIGHTS]!
                // Reuse the reordered dOutput of the data pass when both primitives chose one layout.
                let dDstMemory: dnnl_memory_t
                if let reorderedDOutput, dDst.needsReorder, reorderedDOutput.descriptor.hasSameInnerLayout(as: dDst) {
                    dDstMemory = reorderedDOutput.memory
                } else {
                    dDstMemory = dDst.bindInput(dOutput, context: self, role: .destination)
                }
                var arguments = [
                    (DNNL_ARG_SRC, weightsPlan.operands[DNNL_ARG_SRC]!.bindInput(input, context: self, role: .source)),
                    (DNNL_ARG_DIFF_DST, dDstMemory),
                    (
                        DNNL_ARG_DIFF_WEIGHTS,
                        dW.bindOutput(dWeight, context: self, role: .weights, accumulate: accumulate)
                    ),
                ]
                let dB = dBias.flatMap { _ in weightsPlan.operands[DNNL_ARG_DIFF_BIAS] }
                if let dB, let dBias {
                    arguments.append(
                        (DNNL_ARG_DIFF_BIAS, dB.bindOutput(dBias, context: self, role: .bias, accumulate: accumulate)))
                }
                execute(weightsPlan.primitive, arguments, "convolution backward weights \(geometry)")
                dW.finishOutput(dWeight, count: geometry.weightCount, context: self, accumulate: accumulate)
                if let dB, let dBias {
                    dB.finishOutput(dBias, count: geometry.outputChannels, context: self, accumulate: accumulate)
                }
            }
            return true
        }
    }

    /// The implementation oneDNN picked for a geometry (nil if none), e.g. for benchmark output.
    func convolutionImplementation(_ key: ConvolutionPlanKey) -> String? {
        withLock { convolutionPlan(key)?.implementation }
    }
}

/// Names the oneDNN implementation behind a convolution pass, or nil without oneDNN.
public func oneDNNConvolutionImplementation(geometry: ConvolutionGeometry, pass: String, blockedLayout: Bool = true)
    -> String?
{
    let kind: ConvolutionPrimitiveKind
    switch pass {
    case "backwardData": kind = .backwardData
    case "backwardWeights": kind = .backwardWeights
    case "inference": kind = .forwardInference
    default: kind = .forwardTraining
    }
    return OneDNN.context?.convolutionImplementation(
        ConvolutionPlanKey(
            geometry: geometry, kind: kind, hasBias: kind == .backwardWeights, blockedLayout: blockedLayout))
}
#endif
