package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tsync/tsync/internal/text"
	"github.com/tsync/tsync/models"
)

// resolveModel returns the model of g named name, ignoring case; an
// unknown name gets one error listing the models, with the closest one.
func resolveModel(g *models.Graph, name string) (string, error) {
	if _, ok := g.Model(name); ok {
		return name, nil
	}
	order := g.Order()
	for _, m := range order {
		if strings.EqualFold(m, name) {
			return m, nil
		}
	}
	hint := ""
	best, bestD := "", -1
	for _, m := range order {
		if d := text.EditDistance(strings.ToLower(name), strings.ToLower(m)); bestD < 0 || d < bestD {
			best, bestD = m, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(name)/3) {
		hint = fmt.Sprintf(" (did you mean %s?)", best)
	}
	return "", fmt.Errorf("unknown model %q%s; models: %s", name, hint, strings.Join(order, ", "))
}

// parseID parses an object id argument.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("id %q is not a positive integer", s)
	}
	return id, nil
}

// checkSchema fails when the store's schema, or every table of its
// models, is missing: status would otherwise say "0 objects".
func (c *CLI) checkSchema(ctx context.Context, store *models.Store) error {
	var schema bool
	if err := store.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, store.Schema()).Scan(&schema); err != nil {
		return fmt.Errorf("schema %s: %w", store.Schema(), err)
	}
	if !schema {
		return fmt.Errorf("schema %s does not exist: run `%s migrate` to create it (or set database_schema)", store.Schema(), c.def.Name)
	}
	missing, err := missingTables(ctx, store)
	if err != nil {
		return err
	}
	if len(missing) == len(store.Graph().Order()) {
		return fmt.Errorf("schema %s has none of %s's tables: run `%s migrate` to create them", store.Schema(), c.def.Name, c.def.Name)
	}
	return nil
}

// missingTables returns the tables of the store's models that do not
// exist, in graph order.
func missingTables(ctx context.Context, store *models.Store) ([]string, error) {
	var out []string
	for _, name := range store.Graph().Order() {
		m, _ := store.Graph().Model(name)
		var exists bool
		if err := store.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, store.Table(m)).Scan(&exists); err != nil {
			return nil, fmt.Errorf("table of %s: %w", name, err)
		}
		if !exists {
			out = append(out, m.Table)
		}
	}
	return out, nil
}
