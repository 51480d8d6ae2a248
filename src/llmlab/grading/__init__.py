"""Answer normalisation and equivalence shared by tasks (scoring) and methods (voting).

Neither tasks nor methods own these: both import them from here, so neither imports the other.
"""
