import DaemonTestSupport
import Foundation
import Testing

/// Issue 7 over the socket: what `refundd` answers must be what happened, and only to who may ask.
@Suite("refundd: honest totals and permissions (issue 7)")
struct Issue7ProtocolTests {
    /// Item 3: `bulk.status` names the money by what became of it, per currency.
    @Test("bulk.status: refunded is succeeded money only; pending and failed amounts, per currency")
    func bulkStatusAmounts() throws {
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        for i in 1...6 {
            _ = try c.ok(
                #"{"id":"p\#(i)","op":"order.put","order":{"id":"ord_s\#(i)","event":"evt_six","customer":"cus_\#(i)","currency":"GBP","lines":[{"id":"l1","ticket_type":"tt_a","price":2900}],"tenders":[{"id":"t1","method":"card","amount":2900}]}}"#
            )
        }
        let started = try c.ok(
            #"{"id":1,"op":"bulk.cancel_event","events":["evt_six"],"method":"original","reason":"event_cancelled","wait":true}"#)
        let jobID = try #require(started["job_id"] as? String)
        #expect(started["state"] as? String == "running")
        #expect(started["refunded"] as? Int == 0 && started["pending_amount"] as? Int == 17_400)
        #expect(started["failed_amount"] as? Int == 0 && started["currency"] as? String == "GBP")

        for i in 1...6 {
            let settle =
                i == 1
                ? #"{"id":"s1","op":"refund.settle","refund_id":"rf_1_ord_s1","tender":"t1","succeeded":false,"failure_code":"expired_card"}"#
                : #"{"id":"s\#(i)","op":"refund.settle","refund_id":"rf_1_ord_s\#(i)","tender":"t1","succeeded":true}"#
            _ = try c.ok(settle)
        }
        let status = try c.ok(#"{"id":2,"op":"bulk.status","job_id":"\#(jobID)"}"#)
        #expect(status["state"] as? String == "completed")
        #expect(status["succeeded"] as? Int == 5 && status["failed"] as? Int == 1)
        #expect(status["refunded"] as? Int == 14_500 && status["failed_amount"] as? Int == 2_900)
        #expect(status["pending_amount"] as? Int == 0 && status["fee_retained"] as? Int == 0)
        let gbp = (status["by_currency"] as? [String: Any])?["GBP"] as? [String: Any]
        #expect(gbp?["refunded"] as? Int == 14_500 && gbp?["failed_amount"] as? Int == 2_900)
        #expect(gbp?["pending_amount"] as? Int == 0 && gbp?["fee_retained"] as? Int == 0)
        daemon.stop()
    }

    /// Item 7: after `contacted_buyer`, more actions, a retry and a closing action are all accepted.
    @Test("refund.recover is a log: contacted_buyer, again, retry, then written_off")
    func recoveryLog() throws {
        let daemon = try Daemon(["--gateway", "external", "--partitions", "2"])
        let c = try LineClient(port: daemon.port)
        _ = try c.ok(#"{"id":1,"op":"order.put","order":\#(simpleOrderJSON("ord_rl"))}"#)
        let refund = try c.ok(#"{"id":2,"op":"refund.create","order_id":"ord_rl","method":"original","reason":"customer_request"}"#)
        let id = try #require(refund["id"] as? String)
        let failure = #"{"id":3,"op":"refund.settle","refund_id":"\#(id)","tender":"t1","succeeded":false,"failure_code":"expired_card"}"#
        _ = try c.ok(failure)
        let first = try c.ok(#"{"id":4,"op":"refund.recover","refund_id":"\#(id)","action":"contacted_buyer","note":"emailed"}"#)
        #expect(first["recovery"] == nil && (first["recoveries"] as? [Any])?.count == 1)
        _ = try c.ok(#"{"id":5,"op":"refund.recover","refund_id":"\#(id)","action":"contacted_buyer","note":"phoned"}"#)
        let retried = try c.ok(#"{"id":6,"op":"refund.retry","refund_id":"\#(id)"}"#)
        #expect(retried["status"] as? String == "pending")
        _ = try c.ok(failure.replacingOccurrences(of: #""id":3"#, with: #""id":7"#))
        let attention = try c.ok(#"{"id":8,"op":"refund.attention"}"#)
        #expect((attention["refunds"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        let closed = try c.ok(#"{"id":9,"op":"refund.recover","refund_id":"\#(id)","action":"written_off","note":"gave up"}"#)
        #expect((closed["recovery"] as? [String: Any])?["action"] as? String == "written_off")
        #expect((closed["recoveries"] as? [[String: Any]])?.compactMap { $0["action"] as? String } == ["contacted_buyer", "contacted_buyer", "written_off"])
        #expect(closed["recoveries_before_retry"] as? Int == 2)
        try c.fails(#"{"id":10,"op":"refund.recover","refund_id":"\#(id)","action":"other","note":"more"}"#, "invalid_state")
        try c.fails(#"{"id":11,"op":"refund.retry","refund_id":"\#(id)"}"#, "invalid_state")
        daemon.stop()
    }
}
