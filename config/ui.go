package config

// UIToken returns the object view's bearer token: the content of
// ui_token_file without surrounding white space, or "" for none. An error
// is one line naming the key, never showing the token.
func (c Config) UIToken() (string, error) {
	k, p := c.uiToken()
	if p != nil {
		return "", p.err(source{}, "")
	}
	return k, nil
}

func (c Config) uiToken() (string, *problem) {
	if c.UITokenFile == "" {
		return "", nil
	}
	return readSecretFile("ui_token_file", c.UITokenFile, "the token")
}
