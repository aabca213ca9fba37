"""test_commands_large.py: large messages never stall the command channel. SQS takes
messages of up to 1 MiB, and its answer escapes them (a quote takes 2 bytes, a non-ASCII
character up to 6), so one ReceiveMessage answer can be many MiB: heald reads all of it,
rejects and deletes the oversized messages one by one, and runs the command behind them.
An answer longer than heald reads is an error, never half a list of messages."""
import awsbed
from test_commands import CommandCase

KIB = 1024


class LargeMessageTest(CommandCase):
    max_receive_count = 2  # a stalled channel sends the ping to the DLQ after two polls

    def test_oversized_messages_rejected_and_deleted_one_by_one(self):
        # Sent before heald polls, so that one answer brings them all (about 4.5 MiB escaped).
        oversized = [self.queue.send('"' * (250 * KIB)) for _ in range(3)]
        # 1 MiB of UTF-8 less a little: up to 3 MiB in the answer.
        oversized.append(self.queue.send("\u00e9" * (512 * KIB - KIB)))
        ping = awsbed.new_command("ping")
        self.queue.send(ping)

        agent = self.start_polling(self.command_agent())
        rejected = agent.events(len(oversized), timeout=30, detail_type="Command Rejected")
        self.assertEqual(sorted(e["detail"]["message_id"] for e in rejected), sorted(oversized))
        for e in rejected:
            d = e["detail"]
            self.assertEqual(d["reason"], "oversized", d)
            self.assertIsNone(d["command_id"], d)
            self.assertNotIn('""', d["message"], "nothing of the body is quoted")
        done = self.one(agent, "Command Succeeded", timeout=30)
        self.assertEqual(done["command_id"], ping["command_id"])
        self.assertQueueEmpty()
        self.assertEqual(self.queue.dead_letters(), [])
        self.assertEqual(agent.event_lines("sqs-error"), [], "no poll failed")
        self.assertEqual(agent.stop(), 0)

    def test_answer_longer_than_heald_reads_is_an_error(self):
        # SQS refuses control characters, moto does not: \u0001 takes 6 bytes escaped, so one
        # message of 600 KiB is 3.6 MiB, more than heald reads for max_messages = 1.
        self.queue.send("\x01" * (600 * KIB))
        agent = self.start_polling(self.command_agent(max_messages="1", visibility_timeout="2s"))
        line = agent.wait_for_event_log("sqs-error")
        self.assertRegex(line, r"the answer is longer than the \d+ bytes heald reads")
        self.assertNotIn("not a JSON object", line, "a cut answer is not parsed")
        # Unreadable, it is never deleted: SQS moves it to the DLQ, and the channel goes on.
        self.wait_until(lambda: len(self.queue.dead_letters()) == 1, 30, "the DLQ to take it")
        ping = awsbed.new_command("ping")
        self.queue.send(ping)
        self.assertEqual(self.one(agent, "Command Succeeded", timeout=30)["command_id"],
                         ping["command_id"])
        self.assertEqual(agent.stop(), 0)
