package objectview

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tsync/tsync/internal/inspect"
)

// Sizes of the drawn graph, in SVG units.
const (
	boxW, boxH = 190, 84
	gapX, gapY = 70, 24
	margin     = 12
)

// graphSVG is the model dependency graph laid out for the template:
// models in columns by depth (those depending on nothing on the left),
// an arrow from each model to each model it depends on.
type graphSVG struct {
	Width, Height int
	Boxes         []box
	Edges         []edge
}

// box is one model's node.
type box struct {
	X, Y  int
	Model string
	Count inspect.Count
}

// edge is one dependency, from the dependent's left side to the
// dependency's right side.
type edge struct {
	X1, Y1, X2, Y2 int
	Title          string
}

// Path is the edge as an SVG path (a cubic curve).
func (e edge) Path() string {
	mid := (e.X1 + e.X2) / 2
	return fmt.Sprintf("M%d %d C%d %d, %d %d, %d %d", e.X1, e.Y1, mid, e.Y1, mid, e.Y2, e.X2, e.Y2)
}

// layout places nodes (dependencies first, as inspect.Graph gives them) in
// columns by depth: a model depending on nothing in the first column
// (those others depend on at the top), any other one column after its
// deepest dependency, as near the height of its dependencies as the boxes
// above it in its column let it be, so that arrows seldom cross boxes.
func layout(nodes []inspect.Node, counts []inspect.Count) graphSVG {
	byModel := map[string]inspect.Count{}
	for _, c := range counts {
		byModel[c.Model] = c
	}
	depth := map[string]int{}
	hasDependents := map[string]bool{}
	columns := [][]inspect.Node{}
	for _, n := range nodes {
		d := 0
		for _, dep := range n.DependsOn {
			d = max(d, depth[dep]+1)
			hasDependents[dep] = true
		}
		depth[n.Model] = d
		for len(columns) <= d {
			columns = append(columns, nil)
		}
		columns[d] = append(columns[d], n)
	}
	const rowH = boxH + gapY
	pos := map[string]box{}
	var g graphSVG
	for d, col := range columns {
		want := map[string]int{}
		for i, n := range col {
			if d == 0 {
				// Those others depend on first, in graph order.
				want[n.Model] = i
				if !hasDependents[n.Model] {
					want[n.Model] += len(col)
				}
				continue
			}
			sum := 0
			for _, dep := range n.DependsOn {
				sum += pos[dep].Y
			}
			want[n.Model] = sum / len(n.DependsOn)
		}
		slices.SortStableFunc(col, func(a, b inspect.Node) int { return cmp.Compare(want[a.Model], want[b.Model]) })
		next := margin
		for _, n := range col {
			y := next
			if d > 0 {
				y = max(next, want[n.Model])
			}
			b := box{X: margin + d*(boxW+gapX), Y: y, Model: n.Model, Count: byModel[n.Model]}
			if b.Count.ByState == nil {
				b.Count = inspect.Count{Model: n.Model, ByState: map[inspect.State]int{}}
			}
			next = y + rowH
			pos[n.Model] = b
			g.Boxes = append(g.Boxes, b)
			g.Width = max(g.Width, b.X+boxW+margin)
			g.Height = max(g.Height, b.Y+boxH+margin)
		}
	}
	for _, n := range nodes {
		from := pos[n.Model]
		for _, dep := range n.DependsOn {
			to := pos[dep]
			g.Edges = append(g.Edges, edge{X1: from.X, Y1: from.Y + boxH/2, X2: to.X + boxW, Y2: to.Y + boxH/2,
				Title: n.Model + " depends on " + dep})
		}
	}
	return g
}
