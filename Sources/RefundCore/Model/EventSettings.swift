/// What an operator configures for one event (`event.put`): its self-service cutoff and whether it is
/// members-only. Fields left nil take the engine's setting.
public struct EventSettings: Sendable, Equatable, Codable {
    /// The event id (as in ``Order/event``).
    public var id: String
    /// Self-service refunds close this many hours before this event starts (0…8,760), instead of the engine's
    /// ``RefundContext/selfServiceCutoffHours``.
    public var selfServiceCutoffHours: Int64?
    /// Members-only: a member holds at most one active ticket of the event, so a ticket is not transferred back
    /// to a purchaser who holds another one (`transfer_back_blocked`).
    public var membersOnly: Bool

    public init(id: String, selfServiceCutoffHours: Int64? = nil, membersOnly: Bool = false) {
        self.id = id
        self.selfServiceCutoffHours = selfServiceCutoffHours
        self.membersOnly = membersOnly
    }

    /// The most hours a cutoff may be (a year).
    public static let maximumCutoffHours: Int64 = 8_760

    /// Throws `invalid_handle` / `invalid_field` naming the field that is wrong.
    public func validate() throws(RefundError) {
        try Handle.validate(id, field: "event")
        if let hours = selfServiceCutoffHours, !(0...Self.maximumCutoffHours).contains(hours) {
            throw RefundError(
                .invalidField, "self_service_cutoff_hours must be 0…\(Self.maximumCutoffHours) hours, not \(hours)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case id = "event"
        case selfServiceCutoffHours = "self_service_cutoff_hours"
        case membersOnly = "members_only"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        selfServiceCutoffHours = try c.decodeIfPresent(Int64.self, forKey: .selfServiceCutoffHours)
        membersOnly = try c.decodeIfPresent(Bool.self, forKey: .membersOnly) ?? false
    }
}
