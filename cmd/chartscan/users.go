package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/web"
)

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage web users, their roles and API tokens"}
	var role string
	var stdinPw, update bool
	add := &cobra.Command{
		Use:   "add NAME --role clerk|reviewer|admin",
		Short: "Add a user; the password is asked for (or read from standard input with --password-stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !web.ValidRole(role) {
				return chartscan.Errorf(chartscan.EInvalid, "--role must be clerk, reviewer or admin")
			}
			hash, err := hashedPassword(cmd, stdinPw)
			if err != nil {
				return err
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				if update {
					u, created, err := a.db.UpsertUser(cmd.Context(), args[0], role, hash)
					if err != nil {
						return err
					}
					verb := "updated"
					if created {
						verb = "added"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s)\n", verb, u.Name, u.Role)
					return a.db.Audit(cmd.Context(), auditCLI("user.upsert", "user:"+u.Name, map[string]any{"role": role}))
				}
				u, err := a.db.CreateUser(cmd.Context(), args[0], role, hash)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s)\n", u.Name, u.Role)
				return a.db.Audit(cmd.Context(), auditCLI("user.create", "user:"+u.Name, map[string]any{"role": role}))
			})
		},
	}
	add.Flags().StringVar(&role, "role", "", "clerk, reviewer or admin")
	add.Flags().BoolVar(&stdinPw, "password-stdin", false, "read the password from the first line of standard input")
	add.Flags().BoolVar(&update, "update-existing", false, "if the user exists, set this role and password (idempotent set-up scripts); their sessions end and their API tokens are revoked")

	var stdinPw2 bool
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password; their sessions end and their API tokens are revoked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := hashedPassword(cmd, stdinPw2)
			if err != nil {
				return err
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				if err := a.db.SetPassword(cmd.Context(), args[0], hash); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s set; their sessions ended and their API tokens were revoked\n", args[0])
				return a.db.Audit(cmd.Context(), auditCLI("user.passwd", "user:"+args[0], nil))
			})
		},
	}
	passwd.Flags().BoolVar(&stdinPw2, "password-stdin", false, "read the password from the first line of standard input")

	var label string
	var days int
	createToken := func(cmd *cobra.Command, args []string) error {
		expires, err := web.TokenExpiry(days)
		if err != nil {
			return chartscan.Errorf(chartscan.EInvalid, "--days: %s", chartscan.ErrorMessage(err))
		}
		return withApp(cmd.Context(), needDB, func(a *app) error {
			tok, hash := web.NewToken()
			t, err := a.db.CreateToken(cmd.Context(), args[0], hash, label, expires)
			if err != nil {
				return err
			}
			if err := a.db.Audit(cmd.Context(), auditCLI("token.create", "user:"+t.User, map[string]any{"token_id": t.ID,
				"label": label, "expires": t.ExpiresAt.UTC().Format(time.RFC3339)})); err != nil {
				return err
			}
			// The token alone on stdout, for scripts; what it is on stderr.
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %d for %s, valid until %s; revoke it with: chartscan users token revoke %d\n",
				t.ID, t.User, t.ExpiresAt.Format("2006-01-02 15:04"), t.ID)
			return nil
		})
	}
	token := &cobra.Command{
		Use:   "token NAME [--label TEXT] [--days N]",
		Short: "Create an API token for a user and print it (it is stored only as a hash); list and revoke tokens",
		Long: `Create an API token for a user and print it; it is stored only as a hash and shown
this once. A token lasts --days (90 by default, at most 366); it ends sooner when it is
revoked (users token revoke ID) or its user's password changes.`,
		Args: cobra.ExactArgs(1),
		RunE: createToken,
	}
	tokenCreate := &cobra.Command{
		Use:   "create NAME [--label TEXT] [--days N]",
		Short: "Create an API token for a user (the same as users token NAME)",
		Args:  cobra.ExactArgs(1),
		RunE:  createToken,
	}
	for _, c := range []*cobra.Command{token, tokenCreate} {
		c.Flags().StringVar(&label, "label", "", "what the token is for")
		c.Flags().IntVar(&days, "days", web.DefaultTokenDays, "days the token lasts")
	}
	tokenList := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List API tokens (a user's, or everyone's): id, label, expiry, last use, revocation",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				ts, err := a.db.Tokens(cmd.Context(), name)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSER\tLABEL\tCREATED\tEXPIRES\tLAST USED\tSTATE")
				day := func(t *time.Time) string {
					if t == nil {
						return "-"
					}
					return t.Format("2006-01-02 15:04")
				}
				for _, t := range ts {
					state := "active"
					switch {
					case t.RevokedAt != nil:
						state = "revoked " + day(t.RevokedAt)
					case !t.Active(time.Now()):
						state = "expired"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Label, day(&t.CreatedAt), day(&t.ExpiresAt),
						day(t.LastUsedAt), state)
				}
				return tw.Flush()
			})
		},
	}
	tokenRevoke := &cobra.Command{
		Use:   "revoke ID...",
		Short: "Revoke API tokens at once, by the ids users token list shows",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ids []int64
			for _, s := range args {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return chartscan.Errorf(chartscan.EInvalid, "%q is not a token id: see chartscan users token list", s)
				}
				ids = append(ids, id)
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				for _, id := range ids {
					t, err := a.db.RevokeToken(cmd.Context(), id)
					if err != nil {
						return err
					}
					if err := a.db.Audit(cmd.Context(), auditCLI("token.revoke", "user:"+t.User, map[string]any{"token_id": t.ID,
						"label": t.Label})); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "revoked token %d of %s\n", t.ID, t.User)
				}
				return nil
			})
		},
	}
	token.AddCommand(tokenCreate, tokenList, tokenRevoke)

	list := &cobra.Command{
		Use:   "list",
		Short: "List users and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				us, err := a.db.Users(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tDISABLED\tSINCE")
				for _, u := range us {
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", u.Name, u.Role, u.Disabled, u.CreatedAt.Format("2006-01-02"))
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(add, passwd, token, list)
	return cmd
}

// auditCLI is an audit entry for a change made from the command line, whose actor is the
// operating-system user that ran it.
func auditCLI(action, object string, detail map[string]any) storageAuditEntry {
	actor := "cli"
	if u := os.Getenv("USER"); u != "" {
		actor = "cli:" + u
	}
	return storageAuditEntry{Actor: actor, Action: action, Object: object, Outcome: "ok", Detail: detail}
}

// readPassword reads a password without echo from a terminal, or the first line of
// standard input with --password-stdin (for scripts; never as an argument, which other
// users of the machine can see).
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if !fromStdin {
		f, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", chartscan.Errorf(chartscan.EInvalid, "standard input is not a terminal: use --password-stdin")
		}
		fmt.Fprint(cmd.ErrOrStderr(), "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "again: ")
		b2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(b) != string(b2) {
			return "", chartscan.Errorf(chartscan.EInvalid, "the passwords differ")
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// hashedPassword reads a new password (see readPassword) and returns its hash.
func hashedPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	pw, err := readPassword(cmd, fromStdin)
	if err != nil {
		return "", err
	}
	return web.HashPassword(pw)
}
