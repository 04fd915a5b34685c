// The C part of FleetMPI lives in include/CFleetMPI.h (static inline functions).
