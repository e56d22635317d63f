// Package mllp carries HL7 v2 messages over TCP with the Minimal Lower Layer Protocol
// (HL7 v2 Appendix C): each message framed as 0x0B, the message, 0x1C 0x0D. It has a
// server that hands each message received to a handler and writes back the
// acknowledgement the handler returns, and a client that sends a message and waits for
// its acknowledgement.
package mllp
