//! Routing daemons' own view of their neighbours: the commands that ask FRR and BIRD, and
//! readers of their answers.
