# Exercise 05-pdb: the PDB for a launch with the HPA's floor raised to 4 replicas.
pdb_spec = {"minAvailable": 3, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
lab.verify("05-pdb", pdb_spec)
