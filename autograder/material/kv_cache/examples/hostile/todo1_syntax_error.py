# A syntax error: the whole package fails to import.
return (self.keys[layer
