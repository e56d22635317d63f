package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// The MLLP framing bytes.
const (
	StartBlock     = 0x0B // vertical tab: a message starts
	EndBlock       = 0x1C // file separator: the message ends…
	CarriageReturn = 0x0D // …followed by a carriage return
)

// DefaultMaxMessage is the largest message a Reader accepts when its limit is not set:
// an ADT message is a few kilobytes; one carrying an embedded document can be large.
const DefaultMaxMessage = 16 << 20

// Errors a Reader returns. Neither quotes the message.
var (
	// ErrTooLarge is returned for a message longer than the reader's limit; the rest of
	// it is discarded, so the connection can go on with the next message.
	ErrTooLarge = errors.New("mllp: message too large")
	// ErrFraming is returned when the stream ends inside a message.
	ErrFraming = errors.New("mllp: stream ended inside a message")
)

// Reader reads MLLP-framed messages from a stream.
type Reader struct {
	r   *bufio.Reader
	max int
}

// NewReader returns a Reader of the messages on r that refuses, with ErrTooLarge, a
// message of more than max bytes (DefaultMaxMessage when max <= 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxMessage
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ReadMessage returns the next message, without its framing bytes. Bytes between
// messages (line breaks some senders add, keep-alive noise) are skipped; a message ends
// at 0x1C, which must be followed by 0x0D (a sender that leaves the 0x0D out is
// tolerated: the next message's 0x0B is not lost). It returns io.EOF when the stream ends
// between messages and ErrFraming when it ends inside one.
func (r *Reader) ReadMessage() ([]byte, error) {
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			return nil, err // io.EOF between messages
		}
		if c == StartBlock {
			break
		}
	}
	var msg []byte
	tooLarge := false
	for {
		chunk, err := r.r.ReadSlice(EndBlock)
		if !tooLarge {
			if len(msg)+len(chunk) > r.max+1 {
				tooLarge, msg = true, nil
			} else {
				msg = append(msg, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return nil, ErrFraming
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if c, err := r.r.Peek(1); err == nil && c[0] == CarriageReturn {
		r.r.Discard(1)
	}
	if tooLarge {
		return nil, ErrTooLarge
	}
	msg = msg[:len(msg)-1] // the EndBlock
	if i := bytes.LastIndexByte(msg, StartBlock); i >= 0 {
		// A start byte inside a message: the sender gave up on a message and started
		// another; the one it finished is the one after the last start.
		msg = msg[i+1:]
	}
	return msg, nil
}

// WriteMessage writes msg to w in one MLLP frame.
func WriteMessage(w io.Writer, msg []byte) error {
	frame := make([]byte, 0, len(msg)+3)
	frame = append(frame, StartBlock)
	frame = append(frame, msg...)
	frame = append(frame, EndBlock, CarriageReturn)
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("mllp: write: %w", err)
	}
	return nil
}
