package mllp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// Client sends messages over one MLLP connection and waits for each acknowledgement. It
// is safe for use by several goroutines; their messages go one at a time.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *Reader
}

// Dial connects to an MLLP listener at addr (host:port), over TLS when tlsConfig is set.
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config) (*Client, error) {
	var d net.Dialer
	var c net.Conn
	var err error
	if tlsConfig != nil {
		td := tls.Dialer{NetDialer: &d, Config: tlsConfig}
		c, err = td.DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mllp: dial: %w", err)
	}
	return &Client{conn: c, r: NewReader(c, 0)}, nil
}

// Send sends msg and returns the acknowledgement the listener sends back, waiting until
// ctx is done at most.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := WriteMessage(c.conn, msg); err != nil {
		return nil, err
	}
	ack, err := c.r.ReadMessage()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mllp: waiting for the acknowledgement: %w", ctx.Err())
		}
		return nil, fmt.Errorf("mllp: read acknowledgement: %w", err)
	}
	return ack, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
