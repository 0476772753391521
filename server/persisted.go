package server

// Query texts the gateway keeps: the cache of validated documents, clients'
// Automatic Persisted Queries, and the operation allow-list
// (GRAPHQL_ALLOWLIST).

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"example.com/gateway/gateway"
	"example.com/gateway/graph"
	"example.com/gateway/resolvers"
)

// Bounds of the caches of query texts. Every entry is a client's choice,
// made before authentication, so each cache is bounded in memory, not only
// in entries.
const (
	// maxPersistedQueries and maxPersistedQueryBytes bound the Automatic
	// Persisted Queries cache to 1,000 × 32 KiB = 32 MiB. A client's
	// operations are a few KiB each; a longer one still runs, sent in
	// full every time.
	maxPersistedQueries    = 1000
	maxPersistedQueryBytes = 32 << 10
	// queryCacheEntries and queryCacheBytes bound the cache of parsed and
	// validated documents by the length of their texts: a parsed document
	// takes up to about 110 bytes per byte of text (3.3 MB for a 30 KB
	// query of one-character tokens, measured), so 1,000 documents of the
	// largest size would take gigabytes. 1 MiB of text holds a thousand
	// ordinary operations, and at worst about 110 MB.
	queryCacheEntries = 1000
	queryCacheBytes   = 1 << 20
)

// textCache is an LRU cache keyed by query text (graphql.Cache), bounded by
// entries and by the total length of its keys. A text longer than a
// sixteenth of the budget is not kept, so that no one request empties the
// cache (it is parsed and validated again when sent again).
type textCache[T any] struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int
	bytes      int
	order      *list.List // of *textEntry[T], most recently used first
	entries    map[string]*list.Element
}

type textEntry[T any] struct {
	key   string
	value T
}

var _ graphql.Cache[*ast.QueryDocument] = (*textCache[*ast.QueryDocument])(nil)

func newTextCache[T any](maxEntries, maxBytes int) *textCache[T] {
	return &textCache[T]{maxEntries: maxEntries, maxBytes: maxBytes, order: list.New(), entries: map[string]*list.Element{}}
}

func (c *textCache[T]) Get(ctx context.Context, key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*textEntry[T]).value, true
	}
	var zero T
	return zero, false
}

func (c *textCache[T]) Add(ctx context.Context, key string, value T) {
	if len(key) > c.maxBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.Value.(*textEntry[T]).value = value
		c.order.MoveToFront(e)
		return
	}
	c.entries[key] = c.order.PushFront(&textEntry[T]{key: key, value: value})
	c.bytes += len(key)
	for c.order.Len() > c.maxEntries || c.bytes > c.maxBytes {
		oldest := c.order.Remove(c.order.Back()).(*textEntry[T])
		delete(c.entries, oldest.key)
		c.bytes -= len(oldest.key)
	}
}

// persistedQueries is gqlgen's Automatic Persisted Queries (Apollo's APQ
// protocol, github.com/apollographql/apollo-link-persisted-queries): a
// request may carry extensions.persistedQuery = {"version": 1,
// "sha256Hash": hex of the query's SHA-256} instead of its query; an
// unknown hash answers PERSISTED_QUERY_NOT_FOUND (message
// "PersistedQueryNotFound", which Apollo's clients look for), and the
// client retries with the query and the hash, which registers it. The
// query then goes through parsing, validation, the limits and
// authentication as if sent in full. gqlgen's malformed-extension and
// hash-mismatch errors carry no code; they get BAD_USER_INPUT.
type persistedQueries struct {
	apq extension.AutomaticPersistedQuery
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = persistedQueries{}

func newPersistedQueries(entries int) persistedQueries {
	return persistedQueries{extension.AutomaticPersistedQuery{
		Cache: apqCache{lru.New[string](entries), maxPersistedQueryBytes}}}
}

func (persistedQueries) ExtensionName() string { return "PersistedQueries" }
func (p persistedQueries) Validate(schema graphql.ExecutableSchema) error {
	return p.apq.Validate(schema)
}

func (p persistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	err := p.apq.MutateOperationParameters(ctx, params)
	if err != nil {
		if _, ok := err.Extensions["code"]; !ok {
			errcode.Set(err, gateway.CodeInvalid)
		}
	}
	return err
}

// apqCache is the APQ cache: an LRU of at most its size's entries, none
// longer than maxBytes.
type apqCache struct {
	*lru.LRU[string]
	maxBytes int
}

func (c apqCache) Add(ctx context.Context, hash, query string) {
	if len(query) <= c.maxBytes {
		c.LRU.Add(ctx, hash, query)
	}
}

// hasPersistedQuery reports whether a request's extensions name a
// persisted query (then the query text may be absent).
func hasPersistedQuery(extensions map[string]any) bool {
	return extensions["persistedQuery"] != nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// allowlist runs only the operations of a manifest (GRAPHQL_ALLOWLIST),
// in place of persistedQueries: nothing is registered at run time.
//
//   - A request with extensions.persistedQuery and no query runs the
//     registered query of that hash (the APQ request shape: Apollo
//     Client's persisted-query link sends it; with Relay, the app's
//     network layer sends the manifest's id so).
//   - A request with a query runs it if the query's SHA-256 is registered
//     (and matches extensions.persistedQuery's hash, if sent).
//   - With INTROSPECTION on, a query whose root fields are all
//     introspection (__schema, __type, __typename) runs too, so that
//     tools still see the schema; with it off, such a query is refused
//     here like any other.
//
// Anything else answers FORBIDDEN, before validation (and, with
// INTROSPECTION off, before parsing), so an unregistered query costs
// little and reveals nothing of the schema.
type allowlist struct {
	queries       map[string]string // SHA-256 hex → query
	introspection bool
	tokens        int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*allowlist)(nil)

func (*allowlist) ExtensionName() string                          { return "Allowlist" }
func (*allowlist) Validate(schema graphql.ExecutableSchema) error { return nil }

func (a *allowlist) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	hash, sent, err := persistedQueryHash(params.Extensions)
	if err != nil {
		return err
	}
	if sent && params.Query == "" {
		q, ok := a.queries[hash]
		if !ok {
			return errNotRegistered()
		}
		params.Query = q
		return nil
	}
	sum := sha256Hex(params.Query)
	if sent && sum != hash {
		err := gqlerror.Errorf("provided APQ hash does not match query")
		errcode.Set(err, gateway.CodeInvalid)
		return err
	}
	if _, ok := a.queries[sum]; ok {
		return nil
	}
	if a.introspection && introspectionOnly(params.Query, params.OperationName, a.tokens) {
		return nil
	}
	return errNotRegistered()
}

func errNotRegistered() *gqlerror.Error {
	err := gqlerror.Errorf("only registered operations run on this gateway (GRAPHQL_ALLOWLIST)")
	errcode.Set(err, gateway.CodeForbidden)
	return err
}

// persistedQueryHash reads extensions.persistedQuery as gqlgen's APQ does:
// version 1 and a sha256Hash (lower-cased here).
func persistedQueryHash(extensions map[string]any) (hash string, sent bool, err *gqlerror.Error) {
	if !hasPersistedQuery(extensions) {
		return "", false, nil
	}
	pq, _ := extensions["persistedQuery"].(map[string]any)
	h, _ := pq["sha256Hash"].(string)
	if h == "" {
		err = gqlerror.Errorf("invalid APQ extension data")
	} else if v := fmt.Sprint(pq["version"]); v != "1" {
		err = gqlerror.Errorf("unsupported APQ version")
	}
	if err != nil {
		errcode.Set(err, gateway.CodeInvalid)
		return "", true, err
	}
	return strings.ToLower(h), true, nil
}

// introspectionOnly reports whether the operation of query named
// operationName is a query whose root fields, through fragments, are all
// introspection fields.
func introspectionOnly(query, operationName string, tokens int) bool {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, tokens)
	if err != nil {
		return false
	}
	op := doc.Operations.ForName(operationName)
	if op == nil || op.Operation != ast.Query || len(op.SelectionSet) == 0 {
		return false
	}
	seen := map[string]bool{}
	var only func(ast.SelectionSet) bool
	only = func(set ast.SelectionSet) bool {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				if sel.Name != "__schema" && sel.Name != "__type" && sel.Name != "__typename" {
					return false
				}
			case *ast.InlineFragment:
				if !only(sel.SelectionSet) {
					return false
				}
			case *ast.FragmentSpread:
				f := doc.Fragments.ForName(sel.Name)
				if f == nil {
					return false
				}
				if !seen[sel.Name] {
					seen[sel.Name] = true
					if !only(f.SelectionSet) {
						return false
					}
				}
			}
		}
		return true
	}
	return only(op.SelectionSet)
}

// apolloManifestFormat is the "format" of Apollo's persisted query
// manifest (@apollo/generate-persisted-query-manifest, Apollo iOS and
// Kotlin): {"format": "apollo-persisted-query-manifest", "version": 1,
// "operations": [{"id", "name", "type", "body"}]}.
const apolloManifestFormat = "apollo-persisted-query-manifest"

// manifestEntry is one operation of an allow-list manifest.
type manifestEntry struct {
	id, name, body string
}

func (e manifestEntry) String() string {
	if e.name != "" {
		return fmt.Sprintf("operation %q (id %s)", e.name, e.id)
	}
	return "operation " + e.id
}

// loadAllowlist reads the manifest at path and checks every operation in
// it: its id must be the SHA-256 (hex) of its body, and the body must
// parse, validate against es's schema and pass limits (complexity with
// the variables' defaults, or the arguments' where a variable has none;
// requests are checked again with their variables). The manifest is either Apollo's (see
// apolloManifestFormat) or a JSON object mapping each SHA-256 hex to its
// query, as Relay's persisted queries (persistConfig with algorithm
// SHA256) and GraphQL Code Generator's persisted documents are written.
// The error names every bad entry.
func loadAllowlist(path string, es graphql.ExecutableSchema, limits graphQLLimits) (*allowlist, error) {
	limits = limits.withDefaults()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("GRAPHQL_ALLOWLIST: %w", err)
	}
	entries, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("GRAPHQL_ALLOWLIST %s: %w", path, err)
	}
	list := &allowlist{queries: map[string]string{}, tokens: limits.tokens}
	var errs []error
	for _, e := range entries {
		if err := checkRegistered(es, e, limits); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", e, err))
			continue
		}
		list.queries[strings.ToLower(e.id)] = e.body
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("GRAPHQL_ALLOWLIST %s: %w", path, errors.Join(errs...))
	}
	return list, nil
}

// parseManifest reads either manifest format (loadAllowlist).
func parseManifest(data []byte) ([]manifestEntry, error) {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("not a JSON object of persisted queries: %w", err)
	}
	var entries []manifestEntry
	if _, ok := object["format"]; ok {
		var m struct {
			Format     string `json:"format"`
			Version    int    `json:"version"`
			Operations []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
				Body string `json:"body"`
			} `json:"operations"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("not an Apollo persisted query manifest: %w", err)
		}
		if m.Format != apolloManifestFormat || m.Version != 1 {
			return nil, fmt.Errorf("format %q version %d: only %q version 1, or a JSON object of SHA-256 → query, is read",
				m.Format, m.Version, apolloManifestFormat)
		}
		for _, op := range m.Operations {
			entries = append(entries, manifestEntry{id: op.ID, name: op.Name, body: op.Body})
		}
	} else {
		for id, raw := range object {
			var body string
			if err := json.Unmarshal(raw, &body); err != nil {
				return nil, fmt.Errorf("operation %s: the query is not a string", id)
			}
			entries = append(entries, manifestEntry{id: id, body: body})
		}
		slices.SortFunc(entries, func(a, b manifestEntry) int { return strings.Compare(a.id, b.id) })
	}
	if len(entries) == 0 {
		return nil, errors.New("lists no operations: nothing could run")
	}
	return entries, nil
}

// checkRegistered checks one operation of a manifest (loadAllowlist).
func checkRegistered(es graphql.ExecutableSchema, e manifestEntry, limits graphQLLimits) error {
	if b, err := hex.DecodeString(e.id); err != nil || len(b) != sha256.Size {
		return errors.New("the id is not a SHA-256 in hex")
	}
	if sum := sha256Hex(e.body); sum != strings.ToLower(e.id) {
		return fmt.Errorf("the id is not the SHA-256 of the body (which is %s)", sum)
	}
	doc, gqlErr := documentLimits{limits: limits}.parse(e.body)
	if gqlErr != nil {
		return gqlErr
	}
	if errs := validator.ValidateWithRules(es.Schema(), doc, rules.NewDefaultRules()); len(errs) > 0 {
		return errs
	}
	ctx := context.Background()
	for _, op := range doc.Operations {
		vars := map[string]any{} // the defaults; absent variables leave the arguments' own
		for _, v := range op.VariableDefinitions {
			if v.DefaultValue != nil {
				if value, err := v.DefaultValue.Value(nil); err == nil {
					vars[v.Variable] = value
				}
			}
		}
		rc := &graphql.OperationContext{Doc: doc, Operation: op, OperationName: op.Name, Variables: vars}
		if err := (operationLimits{limits}).check(doc, op); err != nil {
			return err
		}
		if err := (noIncrementalDelivery{}).MutateOperationContext(ctx, rc); err != nil {
			return err
		}
		if c := complexity.Calculate(ctx, es, op, vars); c > limits.complexity {
			return fmt.Errorf("operation has complexity %d, which exceeds the limit of %d", c, limits.complexity)
		}
	}
	return nil
}

// checkGraphQLAllowlist loads GRAPHQL_ALLOWLIST, if set, as the GraphQL
// handler will, so that the gateway refuses to start with a bad manifest
// rather than serve 503s (call it from New).
func (s *Server) checkGraphQLAllowlist() error {
	if s.Config.GraphQLAllowlist == "" {
		return nil
	}
	es := graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{}))
	_, err := loadAllowlist(s.Config.GraphQLAllowlist, es, graphQLLimits{})
	return err
}
