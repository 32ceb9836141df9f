package models_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

type withSecret struct {
	models.Base
	Name     string  `db:"name"`
	Password string  `db:"password" tsync:"secret"`
	Token    *string `tsync:"secret"`
}

type badSecretTag struct {
	models.Base
	Password string `tsync:"secret,hidden"`
}

func TestSecretFields(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[withSecret](reg, "Account"))
	g, err := reg.Graph()
	require.NoError(t, err)
	m, _ := g.Model("Account")
	var secret []string
	for _, f := range m.Fields {
		if f.Secret {
			secret = append(secret, f.Column)
		}
	}
	require.Equal(t, []string{"password", "token"}, secret)

	err = models.Register[badSecretTag](models.NewRegistry(), "X")
	require.EqualError(t, err, `model X field Password: unknown tsync tag option "hidden" (known: secret)`)
}
