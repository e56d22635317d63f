package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Handler handles one message and returns the acknowledgement to send back. A
// connection's messages are handled one at a time, in the order they arrive, so a
// sender that waits for each acknowledgement (HL7's original mode, what interface
// engines do) sees its messages applied in its order. A nil acknowledgement sends
// nothing back.
type Handler interface {
	ServeMLLP(ctx context.Context, conn *ConnInfo, msg []byte) []byte
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, conn *ConnInfo, msg []byte) []byte

// ServeMLLP calls f.
func (f HandlerFunc) ServeMLLP(ctx context.Context, conn *ConnInfo, msg []byte) []byte {
	return f(ctx, conn, msg)
}

// ConnInfo describes the connection a message came on.
type ConnInfo struct {
	RemoteAddr net.Addr
	// TLS is the connection's TLS state after the handshake; nil on plain TCP.
	TLS *tls.ConnectionState
	// ID numbers the server's connections from 1, for logs.
	ID uint64
}

// Server accepts MLLP connections and hands their messages to Handler.
type Server struct {
	Handler Handler
	// TLSConfig, when set, makes the server speak MLLP over TLS (set ClientAuth and
	// ClientCAs in it to require the sender's certificate).
	TLSConfig *tls.Config
	// MaxMessage is the largest message accepted (DefaultMaxMessage when 0); a larger one
	// is answered by TooLarge, if set, and skipped.
	MaxMessage int
	// TooLarge returns the acknowledgement of a message over MaxMessage (nil: none).
	TooLarge func() []byte
	// IdleTimeout closes a connection with no message for this long (0: never). Senders
	// keep connections open for days, so it is off by default.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one acknowledgement (10 s when 0).
	WriteTimeout time.Duration
	// OnConn, when set, is called when a connection opens and, with the number of
	// messages it carried and why it ended (nil: the sender closed it), when it closes.
	OnConn func(info *ConnInfo, open bool, messages int, err error)

	mu     sync.Mutex
	nextID uint64
}

// Serve accepts connections on ln until ctx is done, then stops accepting, lets every
// message being handled finish and its acknowledgement go out, closes the connections
// and returns nil. Any other error of ln ends it too, and is returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.TLSConfig != nil {
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	// Handlers see a context that outlives the listener's, so a message being applied
	// when the server is stopped is finished, not abandoned half-way.
	handlerCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	var conns sync.Map // net.Conn → *connState
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		conns.Range(func(k, v any) bool {
			v.(*connState).stopWhenIdle()
			return true
		})
	})
	defer stop()
	var err error
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				var ne net.Error
				if errors.As(aerr, &ne) && ne.Timeout() {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				err = aerr
			}
			break
		}
		st := &connState{conn: c}
		conns.Store(c, st)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conns.Delete(c)
			s.serveConn(handlerCtx, st)
		}()
		if ctx.Err() != nil {
			st.stopWhenIdle()
		}
	}
	wg.Wait()
	return err
}

// connState lets the server close a connection between messages, never during one.
type connState struct {
	conn     net.Conn
	mu       sync.Mutex
	busy     bool
	stopping bool
}

// stopWhenIdle closes the connection now if no message is being handled, else after it.
func (st *connState) stopWhenIdle() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stopping = true
	if !st.busy {
		st.conn.Close()
	}
}

// begin marks a message in hand; false if the connection is being stopped.
func (st *connState) begin() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopping {
		return false
	}
	st.busy = true
	return true
}

// end marks the message done, and closes the connection if it is being stopped.
func (st *connState) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.busy = false
	if st.stopping {
		st.conn.Close()
	}
}

func (s *Server) serveConn(ctx context.Context, st *connState) {
	c := st.conn
	defer c.Close()
	s.mu.Lock()
	s.nextID++
	info := &ConnInfo{RemoteAddr: c.RemoteAddr(), ID: s.nextID}
	s.mu.Unlock()
	if tc, ok := c.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			if s.OnConn != nil {
				s.OnConn(info, true, 0, nil)
				s.OnConn(info, false, 0, err)
			}
			return
		}
		cs := tc.ConnectionState()
		info.TLS = &cs
	}
	if s.OnConn != nil {
		s.OnConn(info, true, 0, nil)
	}
	r := NewReader(c, s.MaxMessage)
	n := 0
	var end error
	for {
		if s.IdleTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		}
		msg, err := r.ReadMessage()
		tooLarge := errors.Is(err, ErrTooLarge)
		if err != nil && !tooLarge {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				end = err
			}
			break
		}
		if !st.begin() {
			break // stopping: the sender resends a message it got no acknowledgement for
		}
		n++
		var ack []byte
		switch {
		case !tooLarge:
			ack = s.Handler.ServeMLLP(ctx, info, msg)
		case s.TooLarge != nil:
			ack = s.TooLarge()
		}
		if ack != nil {
			wt := s.WriteTimeout
			if wt == 0 {
				wt = 10 * time.Second
			}
			c.SetWriteDeadline(time.Now().Add(wt))
			if err := WriteMessage(c, ack); err != nil {
				end = err
				st.end()
				break
			}
		}
		st.end()
	}
	if s.OnConn != nil {
		s.OnConn(info, false, n, end)
	}
}
