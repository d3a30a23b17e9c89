"""Talking to FreeSWITCH: the Event Socket transport (inbound and outbound),
its framing, typed events, the commands sent, and the supervisor that keeps the
connection up. Only esl.py imports greenswitch."""
