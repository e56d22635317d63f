package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chartscan/chartscan"
)

// TestFileErrorHidesDatabaseText: a database error reaching records import is shown by
// its SQLSTATE, never its message or detail, which quote the record.
func TestFileErrorHidesDatabaseText(t *testing.T) {
	pe := &pgconn.PgError{Code: "22021", Message: `invalid byte sequence for encoding "UTF8": 0xeb 0x6e 0x74`,
		Detail: "Key (mrn)=(123456) already exists"}
	err := fileError("empi.csv", fmt.Errorf("import merge: %w", pe))
	msg := err.Error()
	if chartscan.ErrorCode(err) != chartscan.EInternal || !strings.Contains(msg, "SQLSTATE 22021") {
		t.Errorf("fileError = %q (%s), want an internal error naming the SQLSTATE", msg, chartscan.ErrorCode(err))
	}
	for _, leak := range []string{"0xeb", "123456", "invalid byte"} {
		if strings.Contains(msg, leak) {
			t.Errorf("fileError shows %q: %s", leak, msg)
		}
	}
}
