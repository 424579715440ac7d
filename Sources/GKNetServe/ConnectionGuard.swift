// Per-connection rules of `gknet serve`, in the HTTP/1 pipeline: a client must send each whole
// request (headers and body) within the read timeout of the connection opening or of the previous
// answer, or the connection is closed (a client trickling one byte a second keeps Hummingbird's
// idle timer happy, not this one); and a client that goes away cancels the job of its request.
import Foundation
import NIOCore
import NIOHTTPTypes

/// The job of each connection's request in flight, so that the connection can cancel it.
public final class ClientWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var controls: [ObjectIdentifier: JobControl] = [:]

    public init() {}

    func register(_ control: JobControl, for connection: ObjectIdentifier) {
        lock.withLock { controls[connection] = control }
    }

    func unregister(_ connection: ObjectIdentifier) {
        _ = lock.withLock { controls.removeValue(forKey: connection) }
    }

    /// The client of `connection` closed it (or its sending side): its job stops at its next stage.
    func clientGone(_ connection: ObjectIdentifier) {
        lock.withLock { controls.removeValue(forKey: connection) }?.cancel()
    }
}

/// Closes a connection whose request does not arrive in full within `readTimeout`, and tells
/// `watch` when the client goes away.
public final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    let readTimeout: TimeAmount
    let watch: ClientWatch
    private var deadline: Scheduled<Void>?

    public init(readTimeout: TimeAmount, watch: ClientWatch) {
        self.readTimeout = readTimeout
        self.watch = watch
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    public func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        disarm()
        watch.clientGone(ObjectIdentifier(context.channel))
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { disarm() }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // the answer is out: the next request has the read timeout from now
        if case .end = unwrapOutboundIn(data) { arm(context) }
        context.write(data, promise: promise)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            watch.clientGone(ObjectIdentifier(context.channel))
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: readTimeout) {
            context.close(promise: nil)
        }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}
